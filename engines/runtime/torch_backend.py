"""PyTorch backend: FP32 on the CPU, FP16 on CUDA, channels-last, batch norm folded, and on
CUDA optionally CUDA graphs (one per batch size, captured when the backend opens)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from detstream.engines.errors import UserInputError
from detstream.engines.models import Detector
from detstream.engines.runtime.base import Backend
from detstream.engines.runtime.torch_threads import use_torch_threads
from detstream.engines.spec import ModelSpec

Log = Callable[[str], None]


class TorchBackend(Backend):
    """Run a detstream :class:`Detector` (or another module with the same raw output, such as
    a torchvision wrapper) directly.

    Args:
        model: the detector (its weights are used as they are; it is fused and cast here).
        spec: its contract.
        device: ``cpu`` or a CUDA device.
        half: FP16 weights and inputs (default: on CUDA only; the CPU runs FP32).
        threads: intra-op threads on the CPU (``None`` leaves torch's setting).
        cuda_graph: CUDA only: capture the forward pass in a CUDA graph for every batch size
            from 1 to ``graph_batches`` now, and replay it instead of launching each layer's
            kernels one by one (small models at small batches are bound by those launches).
            If capture fails the backend says why and runs eagerly.
        graph_batches: the largest batch size captured; larger batches run eagerly.
        log: where a capture failure is reported.
    """

    name = "torch"

    def __init__(self, model: Detector, spec: ModelSpec, device: str | torch.device = "cpu",
                 half: bool | None = None, threads: int | None = None,
                 cuda_graph: bool = False, graph_batches: int = 1,
                 log: Log | None = None) -> None:
        self.spec = spec
        self.device = torch.device(device)
        if half is None:
            half = self.device.type == "cuda"
        self.dtype = torch.float16 if half else torch.float32
        self.max_batch = 256
        # On the CPU: this many threads for every call, whichever thread makes it (see
        # use_torch_threads: inference workers start after the count was set here).
        self.threads = max(1, threads) if threads is not None and self.device.type == "cpu" \
            else None
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        if hasattr(model, "fuse"):  # detstream detectors fold batch norm into the convolutions
            model = model.fuse()
        model = model.to(self.device, dtype=self.dtype).eval()
        self.model = model.to(memory_format=torch.channels_last)
        # Static input and output per captured batch size; replays share them, so one
        # caller at a time (pipelines sharing one model take turns).
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()
        self.graph_error = ""
        if cuda_graph:
            if self.device.type != "cuda":
                raise UserInputError("CUDA graphs need a CUDA device; drop --cuda-graph or "
                                     "pass --device cuda")
            try:
                self._graphs = self._capture(range(1, max(1, graph_batches) + 1))
            except RuntimeError as exc:  # capture refused: run eagerly, and say so
                self.graph_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                (log or print)(f"CUDA graph capture failed ({self.graph_error}); running "
                               "without CUDA graphs")

    @torch.inference_mode()
    def _capture(self, sizes: range) -> dict:
        """Capture one graph per batch size, before any pipeline thread uses the device.

        Capture runs on a side stream after a warm-up there (cuDNN picks its algorithms and
        the allocator settles outside the capture), in ``thread_local`` mode so that CUDA
        calls other threads might make meanwhile are not what breaks the capture.
        """
        h, w = self.spec.input_size
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        graphs = {}
        with torch.cuda.stream(side):
            for n in sizes:
                static_in = torch.zeros((n, 3, h, w), device=self.device, dtype=self.dtype)
                static_in = static_in.contiguous(memory_format=torch.channels_last)
                for _ in range(3):
                    self.model(static_in)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
                    static_out = self.model(static_in)
                graphs[n] = (graph, static_in, static_out)
        torch.cuda.current_stream(self.device).wait_stream(side)
        return graphs

    @property
    def graph_sizes(self) -> list[int]:
        """Batch sizes replayed from a CUDA graph (empty when graphs are off or failed)."""
        return sorted(self._graphs)

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        captured = self._graphs.get(batch.shape[0])
        if captured is not None:
            graph, static_in, static_out = captured
            with self._lock:
                static_in.copy_(batch)  # converts dtype and layout on the caller's stream
                graph.replay()
                return static_out.clone()  # the next replay overwrites static_out
        if self.threads is not None:
            use_torch_threads(self.threads)
        batch = batch.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)
        return self.model(batch)

    def describe(self) -> str:
        sizes = self.graph_sizes
        if not sizes:
            return super().describe()
        return f"{super().describe()} [CUDA graphs for batch {sizes[0]}-{sizes[-1]}]"

    def close(self) -> None:
        self._graphs.clear()
