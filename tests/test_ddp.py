"""DDP on CPU: two gloo processes under torchrun agree with each other and with one process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from detstream.engines.data.synthetic.dataset import DatasetSpec, write_dataset
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="this torch build has no torch.distributed")


def _torchrun(processes: int, data, out) -> dict:
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={processes}", str(REPO / "tests" / "ddp_probe.py"), str(data),
         str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = {}
    for rank in range(processes):
        name = f"rank{rank}-of-{processes}"
        rows = json.loads((out / f"{name}.json").read_text())
        start = load_file(str(out / f"{name}-start.safetensors"))
        end = load_file(str(out / f"{name}.safetensors"))
        # What training changed in the final classification biases: no BatchNorm sits behind
        # them, so they compare across batch splits (the rest of the network sees BatchNorm
        # statistics over 4 instead of 8 images, which changes its early gradients entirely).
        keys = sorted(k for k in end if k.startswith("head.cls_branches") and
                      k.endswith(".2.bias"))
        assert keys, sorted(end)[-5:]
        step = torch.cat([(end[k] - start[k]).flatten() for k in keys])
        ranks[rank] = (end, rows, step)
    return ranks


def _loss(row: dict) -> float:
    return row["train/box"] + row["train/cls"] + row["train/dfl"]


def test_two_gloo_processes_match_each_other_and_one_process(tmp_path):
    root = tmp_path / "data"
    write_dataset(root, DatasetSpec(train=16, val=4, imgsz=128, seed=0), workers=1)
    ddp = _torchrun(2, root / "data.yaml", tmp_path / "ddp")
    single = _torchrun(1, root / "data.yaml", tmp_path / "single")

    # Gradients are all-reduced, so both ranks take identical steps: bit-identical weights.
    (weights0, rows0, _), (weights1, rows1, step) = ddp[0], ddp[1]
    assert weights0.keys() == weights1.keys()
    for key in weights0:
        assert torch.equal(weights0[key], weights1[key]), key
    # ... and they did move away from the initial weights, differently from each other's data.
    _, one_rows, one_step = single[0]
    assert len(rows0) == len(rows1) == len(one_rows) == 2
    assert _loss(rows0[0]) != _loss(rows1[0])

    # The two ranks together see exactly the single process's global batches, so the mean of
    # their first-epoch losses (taken before any optimizer step) matches the single process.
    # What remains is BatchNorm statistics over 4 instead of 8 images per process.
    ddp_first = (_loss(rows0[0]) + _loss(rows1[0])) / 2
    assert ddp_first == pytest.approx(_loss(one_rows[0]), rel=0.03)
    # Both took (nearly) the same steps there: the updates point the same way.
    cosine = torch.nn.functional.cosine_similarity(step, one_step, dim=0)
    print(f"DDP vs single: first loss {ddp_first:.4f} vs {_loss(one_rows[0]):.4f}; "
          f"update cosine {cosine:.4f}, norms {step.norm():.4f} vs {one_step.norm():.4f}")
    assert cosine > 0.95
