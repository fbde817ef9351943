"""TensorRT backend: torch CUDA tensors as I/O, name-based tensor addresses,
``execute_async_v3`` on a stream of its own, optional CUDA graphs. No pycuda.

Follows TensorRT's Python bindings (``python/src/infer/pyCore.cpp`` and
``python/docstrings/infer/pyCoreDoc.h`` in NVIDIA/TensorRT, 10.x and 11.x):

- ``set_input_shape``, ``set_tensor_address`` and ``execute_async_v3`` return ``bool``; each
  return is checked.
- Every input and output tensor needs an address before ``execute_async_v3``, so every output
  gets a buffer, whatever its type; the detection output is returned.
- ``execute_async_v3`` on the default stream makes TensorRT add device-wide synchronisations
  (its docstring), so the work runs on a stream of our own, ordered against the caller's.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import torch

from detstream.engines.errors import UserInputError
from detstream.engines.runtime.base import Backend
from detstream.engines.spec import ModelSpec
from detstream.engines.tensorrt.builder import Log, import_tensorrt, load_or_build, require_cuda

# TensorRT ``DataType`` member names (pyFoundationalTypes.cpp) → the torch dtype of a buffer
# for them. FP8 and E8M0 take a byte per value; INT4 and FP4 pack two values in a byte.
TORCH_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16,
                "INT8": torch.int8, "INT32": torch.int32, "INT64": torch.int64,
                "BOOL": torch.bool, "UINT8": torch.uint8, "FP8": torch.uint8,
                "E8M0": torch.uint8}
PACKED_4BIT = ("INT4", "FP4")
FLOAT_TYPES = ("FLOAT", "HALF", "BF16")


def buffer_layout(type_name: str, shape: tuple[int, ...]) -> tuple[torch.dtype, tuple[int, ...]]:
    """The torch dtype and shape of a buffer that holds a TensorRT tensor of ``type_name`` and
    ``shape`` (bytes for the types torch has no dtype for)."""
    if any(d < 0 for d in shape):
        raise RuntimeError(f"TensorRT left a tensor shape unresolved: {shape}")
    if type_name in PACKED_4BIT:
        return torch.uint8, (math.ceil(math.prod(shape) / 2),)
    dtype = TORCH_DTYPES.get(type_name)
    if dtype is None:
        raise UserInputError(f"engine tensor type {type_name} is not supported by detstream")
    return dtype, tuple(shape)


class TensorRTBackend(Backend):
    """Run a TensorRT engine built (or loaded from the cache) for an ONNX file.

    Args:
        onnx_path: the ONNX model; its precision decides the engine's (strongly typed).
        spec: the model's contract.
        device: the CUDA device.
        max_batch: the largest batch wanted; the engine's profile covers 1..max_batch, or the
            file's own batch when it fixes one (then :attr:`max_batch` is that batch).
        workspace_gb: builder workspace limit.
        cuda_graph: capture the engine's execution in a CUDA graph for every batch size now,
            before any pipeline thread runs, and replay it afterwards (saves the per-layer
            launch overhead at small batches). Each captured size has its own execution
            context, since a graph holds the shapes and addresses it was captured with. If
            capture fails the backend says why and runs without graphs.
        log: where build progress and capture failures go.
    """

    name = "tensorrt"

    def __init__(self, onnx_path: str | Path, spec: ModelSpec, device: str | torch.device = "cuda",
                 max_batch: int = 1, workspace_gb: float = 4.0, cuda_graph: bool = False,
                 log: Log = print) -> None:
        trt = import_tensorrt()
        self.device = require_cuda(device)
        self.spec = spec
        self.engine, self.path, key, io = load_or_build(onnx_path, max_batch, self.device,
                                                        workspace_gb, log)
        self.min_batch, _, self.max_batch = key.batch
        self.input_size = key.input_size
        self.input_name = io.input_name
        inputs, self.outputs = [], {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            type_name = self.engine.get_tensor_dtype(name).name
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs.append((name, type_name))
            else:
                self.outputs[name] = type_name
        if [name for name, _ in inputs] != [io.input_name]:
            raise UserInputError(f"{self.path.name}: expected one input {io.input_name!r}, the "
                                 f"engine has {[name for name, _ in inputs]}")
        self.dtype = {"FLOAT": torch.float32, "HALF": torch.float16}.get(inputs[0][1])
        if self.dtype is None:
            raise UserInputError(f"{self.path.name}: input type {inputs[0][1]} is not float or "
                                 "float16")
        self.output_name = io.output_names[0]
        if self.output_name not in self.outputs:  # a parser that renamed it: take the first
            self.output_name = next(iter(self.outputs))
        if self.outputs[self.output_name] not in FLOAT_TYPES:
            raise UserInputError(f"{self.path.name}: the detection output {self.output_name} "
                                 f"is {self.outputs[self.output_name]}, not floating point")
        # One execution context holds the bound shapes and addresses: callers from several
        # threads (pipelines sharing one model) take turns.
        self._lock = threading.Lock()
        self._graphs: dict[int, tuple] = {}  # batch -> (graph, context, input, output, all)
        self.graph_error = ""
        with torch.cuda.device(self.device):
            self.stream = torch.cuda.Stream(self.device)
            self.context = self.engine.create_execution_context()
            if cuda_graph:
                try:
                    self._graphs = self._capture(range(self.min_batch, self.max_batch + 1))
                except RuntimeError as exc:
                    self.graph_error = str(exc).splitlines()[0] if str(exc) else "unknown"
                    log(f"CUDA graph capture failed ({self.graph_error}); running TensorRT "
                        "without CUDA graphs")

    def _check(self, shape: torch.Size) -> None:
        h, w = self.input_size
        n = shape[0] if len(shape) == 4 else -1
        if len(shape) != 4 or tuple(shape[1:]) != (3, h, w) or \
                not self.min_batch <= n <= self.max_batch:
            batches = (str(self.max_batch) if self.min_batch == self.max_batch
                       else f"{self.min_batch}-{self.max_batch}")
            raise UserInputError(f"the TensorRT engine {self.path.name} takes batches of "
                                 f"[{batches}, 3, {h}, {w}]; got {list(shape)}")

    def _bind(self, context: Any, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Set ``batch``'s shape and every tensor's address on ``context``; returns the output
        buffers (allocated on the current stream) by name."""
        if not context.set_input_shape(self.input_name, tuple(batch.shape)):
            raise UserInputError(f"the TensorRT engine {self.path.name} refused input shape "
                                 f"{list(batch.shape)}")
        if not context.set_tensor_address(self.input_name, batch.data_ptr()):
            raise RuntimeError(f"TensorRT refused the address of input {self.input_name}")
        buffers = {}
        for name, type_name in self.outputs.items():
            dtype, shape = buffer_layout(type_name, tuple(context.get_tensor_shape(name)))
            buffer = torch.empty(shape, dtype=dtype, device=self.device)
            if not context.set_tensor_address(name, buffer.data_ptr()):
                raise RuntimeError(f"TensorRT refused the address of output {name}")
            buffers[name] = buffer
        return buffers

    def _capture(self, sizes: range) -> dict:
        """One graph and one execution context per batch size, captured on our stream."""
        h, w = self.input_size
        graphs = {}
        with torch.cuda.stream(self.stream):
            for n in sizes:
                context = self.engine.create_execution_context()
                static_in = torch.zeros((n, 3, h, w), dtype=self.dtype, device=self.device)
                buffers = self._bind(context, static_in)
                # The first enqueue may do shape-dependent set-up that cannot be captured.
                if not context.execute_async_v3(self.stream.cuda_stream):
                    raise RuntimeError(f"TensorRT execution failed for batch {n}")
                self.stream.synchronize()
                graph = torch.cuda.CUDAGraph()
                # Thread-local capture: CUDA calls other threads make meanwhile neither fail
                # nor break the capture.
                with torch.cuda.graph(graph, stream=self.stream,
                                      capture_error_mode="thread_local"):
                    enqueued = context.execute_async_v3(self.stream.cuda_stream)
                if not enqueued:
                    raise RuntimeError(f"TensorRT could not enqueue batch {n} while capturing")
                graphs[n] = (graph, context, static_in, buffers[self.output_name], buffers)
        return graphs

    @property
    def graph_sizes(self) -> list[int]:
        """Batch sizes replayed from a CUDA graph (empty when graphs are off or failed)."""
        return sorted(self._graphs)

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        self._check(batch.shape)
        batch = batch.to(self.device, self.dtype).contiguous()
        caller = torch.cuda.current_stream(self.device)
        with self._lock:
            self.stream.wait_stream(caller)  # the input was made on the caller's stream
            with torch.cuda.stream(self.stream):
                captured = self._graphs.get(batch.shape[0])
                if captured is not None:
                    graph, _, static_in, static_out, _ = captured
                    static_in.copy_(batch)
                    graph.replay()
                    output = static_out.clone()  # the next replay overwrites static_out
                else:
                    buffers = self._bind(self.context, batch)
                    if not self.context.execute_async_v3(self.stream.cuda_stream):
                        raise RuntimeError("TensorRT execution failed (execute_async_v3 "
                                           "returned False); see TensorRT's messages above")
                    output = buffers[self.output_name]
            caller.wait_stream(self.stream)
        batch.record_stream(self.stream)
        output.record_stream(caller)
        return output

    def describe(self) -> str:
        sizes = self.graph_sizes
        graph = f", CUDA graphs for batch {sizes[0]}-{sizes[-1]}" if sizes else ""
        return f"{super().describe()} [{self.path.name}{graph}]"

    def close(self) -> None:
        self._graphs.clear()
        self.context = None
        self.engine = None
