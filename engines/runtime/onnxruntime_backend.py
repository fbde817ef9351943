"""ONNX Runtime backend: the CPU provider everywhere; CUDA and TensorRT providers when the
onnxruntime-gpu package is installed and a GPU is present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from detstream.engines.errors import UserInputError
from detstream.engines.runtime.base import Backend
from detstream.engines.spec import ModelSpec

_NUMPY_OF = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def default_threads() -> int:
    """Intra-op threads for inference: every core on machines with one or two (inference is
    the slowest stage there), one fewer on larger machines so decode and encode keep a core."""
    cores = os.cpu_count() or 1
    return cores if cores <= 2 else cores - 1


class OnnxRuntimeBackend(Backend):
    """Run an ONNX file with onnxruntime.

    Args:
        path: the ``.onnx`` file.
        spec: the model's contract (from the file's metadata or the caller).
        device: ``cpu`` or ``cuda[:N]`` (the CUDA provider must be installed).
        threads: intra-op threads on the CPU (default :func:`default_threads`).
        tensorrt: on CUDA, try the TensorRT execution provider first.
        spin: let the intra-op threads busy-wait for work between calls: a little less latency
            when inference has the cores to itself, wasted cores when other stages share them.
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, spec: ModelSpec, device: str | torch.device = "cpu",
                 threads: int | None = None, tensorrt: bool = False,
                 spin: bool = False) -> None:
        import onnxruntime as ort

        from detstream.engines.export.metadata import int8_record, load_onnx

        # load_onnx refuses unreadable files and external data outside their folder.
        self._int8 = int8_record(load_onnx(path)) is not None
        self.spec = spec
        self.device = torch.device(device)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        providers: list = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in available:
                raise UserInputError(
                    "onnxruntime here has no CUDA provider (install onnxruntime-gpu), or use "
                    "--device cpu")
            cuda = ("CUDAExecutionProvider", {"device_id": self.device.index or 0})
            providers = [cuda, "CPUExecutionProvider"]
            if tensorrt and "TensorrtExecutionProvider" in available:
                providers.insert(0, ("TensorrtExecutionProvider",
                                     {"device_id": self.device.index or 0,
                                      "trt_fp16_enable": True}))
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserInputError(f"onnxruntime cannot load {path}: {message}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise UserInputError(f"{path}: expected one input image tensor, found "
                                 f"{len(inputs)} inputs")
        self.input_name = inputs[0].name
        self.output_name = self.session.get_outputs()[0].name
        numpy_dtype = _NUMPY_OF.get(inputs[0].type)
        if numpy_dtype is None:
            raise UserInputError(f"{path}: input type {inputs[0].type} is not float or float16")
        self._numpy_dtype = numpy_dtype
        self.dtype = torch.float16 if numpy_dtype is np.float16 else torch.float32
        batch_dim = inputs[0].shape[0]
        self.max_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else 256
        self.threads = options.intra_op_num_threads
        self.providers = self.session.get_providers()

    @property
    def precision(self) -> str:
        """``int8`` for a quantized file from ``detstream export --int8``, else the input's."""
        return "int8" if self._int8 else super().precision

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        array = batch.detach().cpu().numpy().astype(self._numpy_dtype, copy=False)
        (raw,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(raw).to(self.device)

    def describe(self) -> str:
        provider = self.providers[0].replace("ExecutionProvider", "")
        plural = "" if self.threads == 1 else "s"
        return f"{super().describe()} [{provider}, {self.threads} thread{plural}]"
