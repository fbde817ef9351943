"""Run a model over a dataset split and score it (used by the trainer and ``detstream val``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from engines.data.detection import DetectionSource
from engines.data.loader import ValDataset, build_loader
from engines.process.decode import DecodeConfig, decode, to_detections
from engines.spec import Detections, ModelSpec
from engines.train.evaluate import DetectionEvaluator, EvalResult


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
    dataset = ValDataset(source, spec.input_size[0], spec.pad_value)
    loader = build_loader(dataset, batch, workers, shuffle=False)
    decode_cfg = DecodeConfig(conf=conf, iou=iou, max_det=max_det)
    evaluator = DetectionEvaluator(spec.class_names)
    for images, _, metas in tqdm(loader, disable=not progress, desc="val", unit="batch",
                                 leave=False, dynamic_ncols=True):
        raw = model(images.to(device, non_blocking=True).float().div_(255.0))
        for (boxes, scores, classes), meta in zip(decode(raw.float(), spec.layout, decode_cfg),
                                                  metas, strict=True):
            pred = to_detections(boxes, scores, classes, meta["letterbox"], spec.class_names)
            gt = Detections(boxes=meta["boxes"], scores=np.ones(len(meta["boxes"])),
                            class_ids=meta["classes"], class_names=spec.class_names)
            evaluator.add(gt, pred, image_id=int(meta["index"]))
    return evaluator.compute()
