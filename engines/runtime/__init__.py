"""Runtime backends (TensorRT, PyTorch, ONNX Runtime) and what this machine can run."""

from detstream.engines.runtime.availability import BackendStatus, backend_statuses, gpus

__all__ = ["BackendStatus", "backend_statuses", "gpus"]
