"""Ctrl-C during training, then ``--resume``: the run ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from detstream.engines.data.synthetic.dataset import DatasetSpec, write_dataset
from tests.conftest import REPO, run_cli


def _train_args(data, out) -> list[str]:
    # Mosaic goes off for the last epoch, so the resumed part rebuilds its loader too.
    return ["train", "--data", str(data), "--imgsz", "128", "--epochs", "3", "--batch", "8",
            "--workers", "0", "--close-mosaic", "1", "--warmup-epochs", "1", "--out", str(out)]


def _default_sigint() -> None:
    """A shell running the tests in the background ignores SIGINT, and children inherit that
    (Python then installs no KeyboardInterrupt handler): give the trainer the default back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_run_resumes_exactly(tmp_path):
    root = tmp_path / "data"
    write_dataset(root, DatasetSpec(train=32, val=4, imgsz=128, seed=1), workers=1)
    data = root / "data.yaml"

    straight = run_cli(*_train_args(data, tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-2000:]

    out = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, "-m", "detstream", *_train_args(data, out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO, preexec_fn=_default_sigint)
    for line in process.stdout:  # the epoch line is printed once its checkpoint is saved
        if line.startswith("epoch 1/3:"):
            process.send_signal(signal.SIGINT)
            break
    _, stderr = process.communicate(timeout=300)
    if process.returncode == 0:
        pytest.fail("the run finished before it could be interrupted")
    assert process.returncode == 130, stderr[-2000:]

    resumed = run_cli("train", "--out", str(out), "--resume", "--workers", "0")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "epoch 3/3:" in resumed.stdout and "epoch 1/3:" not in resumed.stdout

    expected = load_file(str(tmp_path / "straight" / "weights" / "last.safetensors"))
    got = load_file(str(out / "weights" / "last.safetensors"))
    assert expected.keys() == got.keys()
    # EMA weights, raw weights and optimizer state all match bit for bit.
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 4  # header + 3 epochs, the interrupted one not counted twice
