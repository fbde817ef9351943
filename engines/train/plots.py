"""The training-curves picture: losses and validation mAP per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_results(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write a PNG with training losses (left) and validation mAP50 / mAP50-95 (right)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for key, label in (("train/box", "box (CIoU)"), ("train/cls", "cls (BCE)"),
                       ("train/dfl", "dfl")):
        left.plot(epochs, [r[key] for r in rows], marker=".", label=label)
    left.set_title("training loss")
    left.set_xlabel("epoch")
    left.legend()
    for key, label in (("map50", "mAP50"), ("map50_95", "mAP50-95")):
        right.plot(epochs, [r.get(key) for r in rows], marker=".", label=label)
    right.set_title("validation (EMA weights)")
    right.set_xlabel("epoch")
    right.set_ylim(0, 1)
    right.legend()
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
