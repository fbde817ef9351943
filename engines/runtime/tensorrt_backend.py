"""TensorRT backend: torch CUDA tensors as I/O, name-based tensor addresses,
``execute_async_v3`` on a torch CUDA stream, optional CUDA-graph capture. No pycuda."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from engines.errors import UserInputError
from engines.export.metadata import onnx_precision
from engines.runtime.base import Backend
from engines.spec import ModelSpec
from engines.tensorrt.builder import Log, import_tensorrt, load_or_build, require_cuda


class TensorRTBackend(Backend):
    """Run a TensorRT engine built (or loaded from the cache) for an ONNX file.

    Args:
        onnx_path: the ONNX model; its precision decides the engine's (strongly typed).
        spec: the model's contract.
        device: the CUDA device.
        batch: (min, opt, max) batch sizes of the optimization profile; a fixed-batch ONNX
            needs (1, 1, 1).
        workspace_gb: builder workspace limit.
        cuda_graph: capture each batch size's execution in a CUDA graph on first use and
            replay it afterwards (saves the per-layer launch overhead at small batches).
        log: where build progress goes.
    """

    name = "tensorrt"

    def __init__(self, onnx_path: str | Path, spec: ModelSpec, device: str | torch.device = "cuda",
                 batch: tuple[int, int, int] = (1, 1, 1), workspace_gb: float = 4.0,
                 cuda_graph: bool = False, log: Log = print) -> None:
        trt = import_tensorrt()
        self.device = require_cuda(device)
        torch.cuda.set_device(self.device)
        self.spec = spec
        precision = onnx_precision(onnx_path)
        self.engine, self.path = load_or_build(onnx_path, precision, batch, spec.input_size,
                                               self.device, workspace_gb, log)
        self.context = self.engine.create_execution_context()
        dtypes = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
        self.input_name = self.output_name = ""
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            dtype = dtypes.get(self.engine.get_tensor_dtype(name))
            if dtype is None:
                raise UserInputError(f"engine tensor {name} has unsupported type "
                                     f"{self.engine.get_tensor_dtype(name)}")
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.input_name, self.dtype = name, dtype
            elif not self.output_name:
                self.output_name, self.output_dtype = name, dtype
        self.max_batch = batch[2]
        self.stream = torch.cuda.Stream(self.device)
        self.cuda_graph = cuda_graph
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        # One execution context holds the bound shapes and addresses: callers from several
        # threads (pipelines sharing one model) take turns.
        self._lock = threading.Lock()

    def _bind(self, batch: torch.Tensor) -> torch.Tensor:
        """Set shapes and addresses for ``batch``; returns the output buffer."""
        self.context.set_input_shape(self.input_name, tuple(batch.shape))
        shape = tuple(self.context.get_tensor_shape(self.output_name))
        output = torch.empty(shape, dtype=self.output_dtype, device=self.device)
        self.context.set_tensor_address(self.input_name, batch.data_ptr())
        self.context.set_tensor_address(self.output_name, output.data_ptr())
        return output

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.shape[0] > self.max_batch:
            raise ValueError(f"batch {batch.shape[0]} exceeds the engine's maximum "
                             f"{self.max_batch}")
        batch = batch.to(self.device, self.dtype).contiguous()
        caller = torch.cuda.current_stream(self.device)
        with self._lock:
            self.stream.wait_stream(caller)  # the input was made on the caller's stream
            with torch.cuda.stream(self.stream):
                if self.cuda_graph:
                    output = self._replay(batch)
                else:
                    output = self._bind(batch)
                    if not self.context.execute_async_v3(self.stream.cuda_stream):
                        raise RuntimeError("TensorRT execution failed")
            caller.wait_stream(self.stream)
        batch.record_stream(self.stream)
        output.record_stream(caller)
        return output

    def _replay(self, batch: torch.Tensor) -> torch.Tensor:
        n = batch.shape[0]
        if n not in self._graphs:
            static_in = torch.empty_like(batch)
            static_out = self._bind(static_in)
            self.context.execute_async_v3(self.stream.cuda_stream)  # warm-up before capture
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                self.context.execute_async_v3(self.stream.cuda_stream)
            self._graphs[n] = (graph, static_in, static_out)
        graph, static_in, static_out = self._graphs[n]
        static_in.copy_(batch)
        graph.replay()
        return static_out.clone()

    def describe(self) -> str:
        graph = ", CUDA graph" if self.cuda_graph else ""
        return f"{super().describe()} [{self.path.name}{graph}]"

    def close(self) -> None:
        self._graphs.clear()
        self.context = None
        self.engine = None
