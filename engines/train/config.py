"""Training configuration: one frozen record built by the command line and passed down."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from detstream.engines.data.loader import AugmentConfig


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (saved in every checkpoint's sidecar).

    Attributes:
        data: YOLO ``data.yaml``.
        model: size ``n``, ``s`` or ``m``.
        imgsz: square input size (multiple of 32).
        epochs: epochs to train.
        batch: global batch size (split over DDP processes).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        workers: data-loading processes per training process.
        out: run folder (checkpoints, results.csv, plots).
        optimizer: ``sgd``, ``adamw`` or ``auto`` (AdamW for short runs, SGD for long ones).
        lr0: initial learning rate; None picks one for the optimizer.
        lrf: final learning rate as a fraction of ``lr0``.
        momentum: SGD momentum / Adam beta1.
        weight_decay: decay of conv weights, scaled by batch / 64.
        warmup_epochs: linear warm-up length (at least 100 iterations).
        close_mosaic: final epochs trained without mosaic.
        ema_decay: EMA decay.
        grad_clip: max gradient norm.
        seed: seed of initialisation, shuffling and augmentation.
        amp: mixed precision (float16 on CUDA, bfloat16 on CPUs that have it natively);
            the detection head stays float32.
        weights: optional checkpoint to start from (fine-tuning). A checkpoint without an
            embedding head can start a run with one: the head starts fresh.
        augment: augmentation strengths.
        embed_dim: size of the appearance embedding the model learns alongside detection
            (0: none); needs identity files in the dataset.
        freeze: ``none``, or ``detector`` to train only the embedding head, keeping every
            detection weight (and so the detection accuracy) exactly as it starts.
        id_gain: weight of the identity loss.
        stop_after: end the run after this epoch (0: after the last); the learning-rate and
            mosaic schedules still span ``epochs``, so a resumed run continues them.
    """

    data: Path
    model: str = "n"
    imgsz: int = 320
    epochs: int = 100
    batch: int = 16
    device: str = "cpu"
    workers: int = 2
    out: Path = Path("runs/train")
    optimizer: str = "auto"
    lr0: float | None = None
    lrf: float = 0.01
    momentum: float = 0.937
    weight_decay: float = 5e-4
    warmup_epochs: float = 3.0
    close_mosaic: int = 10
    ema_decay: float = 0.9999
    grad_clip: float = 10.0
    seed: int = 0
    amp: bool = True
    weights: Path | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    embed_dim: int = 0
    freeze: str = "none"
    id_gain: float = 1.0
    stop_after: int = 0

    @property
    def last_epoch(self) -> int:
        """The epoch the run ends after: ``stop_after`` when set (and within ``epochs``)."""
        return self.stop_after if 0 < self.stop_after < self.epochs else self.epochs

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("data", "out", "weights"):
            data[key] = str(data[key]) if data[key] is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = dict(data)
        values["data"] = Path(values["data"])
        values["out"] = Path(values["out"])
        values["weights"] = Path(values["weights"]) if values.get("weights") else None
        values["augment"] = AugmentConfig(**values.get("augment", {}))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})
