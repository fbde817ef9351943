"""``detstream val``: COCO-standard precision, recall, F1, mAP50 and mAP50-95 of a model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detstream.stream.commands.args import (
    add_model_arguments,
    bounded_int,
    fraction,
    output_file,
    worker_count,
)

EXAMPLES = """examples:
  detstream val --model default --data runs/synth/data/data.yaml
  detstream val --model runs/train/n320/weights/best.safetensors --data D.yaml --json val.json
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "val", help="evaluate a model on a dataset split (mAP50, mAP50-95, P, R, F1)",
        description="Evaluate with COCO-standard AP (faster-coco-eval): overall and per class.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, imgsz_help="input size (default: the model's own)",
                        backend=None, backends=("torch", "onnxruntime", "tensorrt"),
                        backend_help="run the model on this backend (default: torch in FP32 "
                                     "for checkpoints, onnxruntime for ONNX files)",
                        device="cpu", device_help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--data", type=Path, required=True, help="YOLO data.yaml")
    parser.add_argument("--split", default="val", help="split to evaluate (default val)")
    parser.add_argument("--conf", type=fraction, default=0.001,
                        help="confidence threshold (default 0.001)")
    parser.add_argument("--iou", type=fraction, default=0.65, help="NMS IoU (default 0.65)")
    parser.add_argument("--batch", type=bounded_int(1, 1024), default=16,
                        help="batch size (default 16)")
    parser.add_argument("--workers", type=worker_count, default=0,
                        help="loading processes (default 0)")
    parser.add_argument("--json", type=output_file, default=None,
                        help="also write the metrics here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from detstream.engines.data.detection import DetectionSource
    from detstream.engines.errors import UserInputError
    from detstream.engines.runtime.select import open_backend
    from detstream.engines.train.trainer import resolve_device
    from detstream.engines.train.validate import evaluate
    from detstream.engines.zoo.resolve import resolve_model

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    device = resolve_device(args.device)
    model_source = resolve_model(args.model, args.names, args.weights, log)
    backend_name = args.backend or ("onnxruntime" if model_source.is_onnx else "torch")
    # Checkpoints are scored in FP32 by default; a backend asked for by name runs in its own
    # precision, as ``detstream run`` runs it (FP16 on CUDA).
    backend = open_backend(model_source, backend_name, str(device), imgsz=args.imgsz,
                           max_batch=args.batch, names=args.names, weights=args.weights,
                           half=False if args.backend is None else None, log=log)
    try:
        print(f"running on {backend.describe()}", file=sys.stderr)
        spec = backend.spec
        source = DetectionSource.from_yolo(args.data, args.split)
        if len(source.class_names) != len(spec.class_names):
            raise UserInputError(
                f"the model predicts {len(spec.class_names)} classes but the dataset has "
                f"{len(source.class_names)}; evaluate on a dataset with the model's classes")
        renamed = sum(a != b for a, b in zip(source.class_names, spec.class_names, strict=True))
        if renamed:
            # Classes are matched by id; names often differ only in spelling
            # (motorbike/motorcycle).
            print(f"note: {renamed} class names differ between model and dataset; classes are "
                  "matched by id and reported with the dataset's names", file=sys.stderr)
        result = evaluate(backend, source, batch=args.batch, workers=args.workers,
                          conf=args.conf, iou=args.iou, progress=True)
    finally:
        backend.close()
    print(result.table())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        print(f"metrics written to {args.json}")
    return 0
