"""Run a model over a dataset split and score it (used by the trainer and ``detstream val``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from detstream.engines.data.detection import DetectionSource
from detstream.engines.data.loader import ValDataset, build_loader
from detstream.engines.metrics.coco import DetectionEvaluator, EvalResult
from detstream.engines.process.decode import DecodeConfig, decode, to_detections
from detstream.engines.progress import progress_bar
from detstream.engines.runtime.base import Backend
from detstream.engines.spec import Detections, ModelSpec


@torch.no_grad()
def evaluate(model: Callable[[torch.Tensor], torch.Tensor], source: DetectionSource,
             spec: ModelSpec, batch: int = 16, device: str | torch.device = "cpu",
             workers: int = 0, conf: float = 0.001, iou: float = 0.65, max_det: int = 300,
             progress: bool = False) -> EvalResult:
    """Score ``model`` on every image of ``source``.

    Args:
        model: takes float [B, 3, S, S] RGB in [0, 1] and returns raw outputs in
            ``spec.layout`` (an ``nn.Module`` in eval mode, or any callable).
        source: images and ground truth.
        spec: the model's contract (input size, class names, layout).
        batch, device, workers: how to run it.
        conf, iou, max_det: post-processing (low ``conf`` for a full precision-recall curve).
        progress: show a progress bar.
    """
    if isinstance(model, torch.nn.Module):
        model.eval()
    dataset = ValDataset(source, spec.input_size[0], spec.pad_value, spec.letterbox)
    loader = build_loader(dataset, batch, workers, shuffle=False)
    decode_cfg = DecodeConfig(conf=conf, iou=iou, max_det=max_det)
    evaluator = DetectionEvaluator(spec.class_names)
    for images, _, metas in progress_bar(loader, disable=not progress, desc="val",
                                         unit="batch", leave=False):
        raw = model(images.to(device, non_blocking=True).float().div_(255.0))
        decoded = decode(raw.float(), spec.layout, decode_cfg, spec.input_size)
        for (boxes, scores, classes), meta in zip(decoded,
                                                  metas, strict=True):
            pred = to_detections(boxes, scores, classes, meta["letterbox"], spec.class_names)
            gt = Detections(boxes=meta["boxes"], scores=np.ones(len(meta["boxes"])),
                            class_ids=meta["classes"], class_names=spec.class_names)
            evaluator.add(gt, pred, image_id=int(meta["index"]))
    return evaluator.compute()


def backend_model(backend: Backend) -> Callable[[torch.Tensor], torch.Tensor]:
    """Adapt a backend to :func:`evaluate`'s model interface (RGB in [0, 1], any batch):
    channel order, scale and mean/std per the backend's contract, in batches it accepts."""
    spec = backend.spec
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    a = 255.0 * spec.scale / std
    b = -torch.tensor(spec.mean).view(1, 3, 1, 1) / std

    def run(images: torch.Tensor) -> torch.Tensor:
        images = images.cpu()
        if spec.colour == "bgr":
            images = images.flip(1)
        images = images * a + b
        step = max(1, backend.max_batch)
        outputs = [backend.infer(images[i:i + step].to(backend.device, backend.dtype))
                   for i in range(0, len(images), step)]
        return torch.cat(outputs).float()

    return run
