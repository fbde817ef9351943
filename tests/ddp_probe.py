"""Launched by ``tests/test_ddp.py`` under torchrun: train two short epochs, then dump what
this rank ended with (its parameters and its per-epoch training losses).

Usage: torchrun --standalone --nproc_per_node=K tests/ddp_probe.py DATA.yaml OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from detstream.engines.train.config import TrainConfig
from detstream.engines.train.trainer import Trainer


class ProbeTrainer(Trainer):
    """A trainer that remembers every epoch's training-loss row on every rank."""

    rows: list[dict[str, Any]]

    def _train_epoch(self, epoch, loader):
        row = super()._train_epoch(epoch, loader)
        self.rows.append(row)
        return row


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    config = TrainConfig(data=data, model="n", imgsz=128, epochs=2, batch=8, workers=0,
                         out=out / "run", optimizer="sgd", lr0=0.01, warmup_epochs=0,
                         close_mosaic=0, seed=0)
    trainer = ProbeTrainer(config)
    trainer.rows = []
    name = f"rank{trainer.rank}-of-{trainer.world}"
    save_file({k: v.detach().clone().contiguous() for k, v in trainer.model.named_parameters()},
              str(out / f"{name}-start.safetensors"))
    trainer.fit()
    save_file({k: v.detach().contiguous() for k, v in trainer.model.named_parameters()},
              str(out / f"{name}.safetensors"))
    (out / f"{name}.json").write_text(json.dumps(trainer.rows), encoding="utf-8")


if __name__ == "__main__":
    main()
