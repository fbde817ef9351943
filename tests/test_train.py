"""The trainer end to end on a tiny synthetic dataset: files, metrics, checkpoints, CLI."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from detstream.engines.data.synthetic.dataset import DatasetSpec, write_dataset
from detstream.engines.zoo import load_model
from tests.conftest import run_cli, run_main


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, DatasetSpec(train=16, val=8, imgsz=128, seed=0), workers=1)
    return root / "data.yaml"


def test_train_writes_checkpoints_results_and_plot(tiny_data, tmp_path):
    out = tmp_path / "run"
    result = run_main("train", "--data", str(tiny_data), "--imgsz", "128", "--epochs", "2",
                     "--batch", "8", "--workers", "0", "--out", str(out), "--close-mosaic", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("weights/best.safetensors", "weights/best.json", "weights/last.safetensors",
                 "results.csv", "results.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    sidecar = json.loads((out / "weights" / "last.json").read_text())
    assert sidecar["spec"]["class_names"] == ["circle", "triangle", "square", "star"]
    assert sidecar["spec"]["input_size"] == [128, 128] and sidecar["train_args"]["epochs"] == 2
    assert set(sidecar["metrics"]) >= {"precision", "recall", "f1", "map50", "map50_95"}
    model, spec, _ = load_model(out / "weights" / "best.safetensors")
    assert spec.num_classes == 4 and model.size == "n"
    # The run is complete: resuming it says so in one line.
    again = run_main("train", "--out", str(out), "--resume")
    assert again.returncode == 2 and "already finished its 2 epochs" in again.stderr
    # val reads the checkpoint and writes the JSON keys the issue names.
    val = run_main("val", "--model", str(out / "weights" / "best.safetensors"), "--data",
                  str(tiny_data), "--json", str(tmp_path / "val.json"))
    assert val.returncode == 0, val.stderr[-2000:]
    metrics = json.loads((tmp_path / "val.json").read_text())
    assert set(metrics) == {"precision", "recall", "f1", "map50", "map50_95", "images",
                            "per_class"}
    assert metrics["images"] == 8


def test_stop_after_ends_early_on_the_longer_schedule_and_resume_finishes_it(tiny_data,
                                                                               tmp_path):
    out = tmp_path / "run"
    common = ("--imgsz", "128", "--batch", "8", "--workers", "0", "--close-mosaic", "0",
              "--warmup-epochs", "0", "--optimizer", "adamw", "--lr0", "0.001")
    short = run_main("train", "--data", str(tiny_data), "--epochs", "3", "--stop-after", "1",
                    "--out", str(out), *common)
    assert short.returncode == 0, short.stderr[-2000:]
    assert "epochs 1-1 of 3" in short.stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1]
    # A 1-epoch schedule would have decayed to lr0 * lrf by now; the 3-epoch one has not.
    assert float(rows[0]["lr"]) > 0.5 * 0.001
    again = run_main("train", "--out", str(out), "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[2]["lr"]) < 0.1 * 0.001


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "missing.yaml"], "does not exist"),
    (["train", "--data", "{data}", "--imgsz", "100"], "multiple of 32"),
    (["train", "--data", "{data}", "--device", "cuda:0"], "no CUDA device"),
    (["val", "--model", "nope.safetensors", "--data", "{data}"], "neither a model name"),
])
def test_train_and_val_mistakes(tiny_data, tmp_path, args, message):
    if "cuda:0" in args and torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here, so --device cuda:0 is valid")
    result = run_cli(*[a.format(data=tiny_data) for a in args], "--out", str(tmp_path / "o")) \
        if args[0] == "train" else run_cli(*[a.format(data=tiny_data) for a in args])
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_models_lists_the_family():
    result = run_main("models", "--family", "--imgsz", "320")
    assert result.returncode == 0
    params = {line.split()[0]: float(line.split()[2].rstrip("M"))
              for line in result.stdout.splitlines() if line.startswith("detstream-")}
    assert set(params) == {"detstream-n", "detstream-s", "detstream-m"}
    assert params["detstream-n"] <= 3.2  # at most YOLOv8n's size
