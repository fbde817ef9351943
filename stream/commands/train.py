"""``detstream train``: train a detector on a YOLO dataset (one process or torchrun DDP)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from detstream.stream.commands.args import (
    bounded_int,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    worker_count,
)

if TYPE_CHECKING:
    from detstream.engines.data.loader import AugmentConfig

EXAMPLES = """examples:
  detstream synth dataset runs/synth/data --train 8000 --val 1000 --imgsz 320
  detstream train --data runs/synth/data/data.yaml --model n --imgsz 320 --epochs 60 \\
      --batch 16 --device cpu --workers 2 --out runs/train/n320
  detstream train --out runs/train/n320 --resume
  detstream train --data runs/synth/data/data.yaml --model n --imgsz 416 --epochs 4 \
      --weights engines/weights/default.safetensors --embed-dim 32 --freeze detector
  torchrun --nproc_per_node=2 -m detstream train --data D.yaml --device cuda --batch 64
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="train a detector (n, s, m) on a YOLO dataset",
        description="Train with task-aligned assignment, CIoU + BCE + DFL losses, mosaic and "
                    "affine augmentation, warm-up + cosine LR, EMA and AMP on CUDA. Writes "
                    "OUT/weights/{best,last}.safetensors (+ .json), OUT/results.csv and "
                    "OUT/results.png. Under torchrun it trains with DDP.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="YOLO data.yaml (required unless --resume)")
    parser.add_argument("--model", choices=("n", "s", "m"), default="n", help="size (default n)")
    parser.add_argument("--imgsz", type=positive_int, default=320, help="input size (default 320)")
    parser.add_argument("--epochs", type=bounded_int(1, 100_000), default=100,
                        help="epochs (default 100)")
    parser.add_argument("--batch", type=bounded_int(1, 4096), default=16,
                        help="global batch size (default 16)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--workers", type=worker_count, default=2,
                        help="data-loading processes (default 2)")
    parser.add_argument("--out", type=Path, default=Path("runs/train/exp"),
                        help="run folder (default runs/train/exp)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--optimizer", choices=("auto", "sgd", "adamw"), default="auto")
    parser.add_argument("--lr0", type=positive_float, default=None,
                        help="initial learning rate (default: chosen per optimizer)")
    parser.add_argument("--warmup-epochs", type=non_negative_float, default=3.0,
                        help="linear warm-up length in epochs, at least 100 iterations; "
                             "0 switches it off (default 3)")
    parser.add_argument("--close-mosaic", type=non_negative_int, default=10,
                        help="final epochs without mosaic (default 10)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--weights", type=Path, default=None,
                        help="start from this checkpoint (same size and classes)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                        help="mixed precision: float16 on CUDA, bfloat16 on CPUs with native "
                             "bf16 (AVX512-BF16, AMX); float32 elsewhere (default on)")
    parser.add_argument("--augment", metavar="KEY=VALUE", nargs="+", default=[],
                        help="augmentation strengths, e.g. scale=0.25 mosaic=0.5 (keys: "
                             "mosaic, degrees, translate, scale, shear, hsv_h, hsv_s, hsv_v, "
                             "fliplr; defaults as Ultralytics' for detection)")
    parser.add_argument("--embed-dim", type=bounded_int(0, 1024), default=0,
                        help="learn a per-box appearance embedding of this size alongside "
                             "detection, for trackers (needs the dataset's identity files, as "
                             "'detstream synth dataset' writes them; default 0: none)")
    parser.add_argument("--freeze", choices=("none", "detector"), default="none",
                        help="detector: train only the embedding head, detection weights stay "
                             "exactly as --weights gives them (default none)")
    parser.add_argument("--id-gain", type=positive_float, default=1.0,
                        help="weight of the identity loss (default 1)")
    parser.add_argument("--stop-after", type=non_negative_int, default=0, metavar="N",
                        help="end after epoch N; the learning-rate and mosaic schedules still "
                             "span --epochs (--resume continues them; default 0: train every "
                             "epoch)")
    parser.set_defaults(handler=run)


def parse_augment(pairs: list[str]) -> AugmentConfig:
    """``["scale=0.25", ...]`` → an :class:`AugmentConfig` (its own range checks apply)."""
    from detstream.engines.data.loader import AugmentConfig
    from detstream.engines.errors import UserInputError

    known = set(AugmentConfig.__dataclass_fields__)
    values: dict[str, float] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in known:
            raise UserInputError(f"--augment takes KEY=VALUE with KEY one of "
                                 f"{', '.join(sorted(known))}; got {pair!r}")
        try:
            values[key] = float(text)
        except ValueError:
            raise UserInputError(f"--augment {key} needs a number, got {text!r}") from None
    return AugmentConfig(**values)


def run(args: argparse.Namespace) -> int:
    from detstream.engines.errors import UserInputError
    from detstream.engines.train.config import TrainConfig
    from detstream.engines.train.trainer import Trainer

    if args.data is None and not args.resume:
        raise UserInputError("--data DATA.yaml is required (or --resume with --out RUN)")
    config = TrainConfig(
        data=args.data or Path("."), model=args.model, imgsz=args.imgsz, epochs=args.epochs,
        batch=args.batch, device=args.device, workers=args.workers, out=args.out,
        optimizer=args.optimizer, lr0=args.lr0, warmup_epochs=args.warmup_epochs,
        close_mosaic=min(args.close_mosaic, args.epochs),
        seed=args.seed, amp=args.amp, weights=args.weights, augment=parse_augment(args.augment),
        embed_dim=args.embed_dim, freeze=args.freeze, id_gain=args.id_gain,
        stop_after=args.stop_after)
    trainer = Trainer(config, resume=args.resume)
    try:
        best = trainer.fit()
    except KeyboardInterrupt:
        last = trainer.out / "weights" / "last.safetensors"
        if last.is_file():
            print(f"{args.prog}: stopped; continue from the last finished epoch with: "
                  f"detstream train --out {trainer.out} --resume", file=sys.stderr)
        raise
    print(f"best checkpoint: {best}")
    return 0
