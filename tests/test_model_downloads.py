"""Named models through a real mirror on 127.0.0.1: download, cache, verification, resume,
errors, concurrent fetches, --weights, COCO names, and a run on a real video by name."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from detstream.engines.errors import UserInputError
from detstream.engines.zoo.coco import COCO80
from detstream.engines.zoo.download import MIRROR_ENV, cached_file
from detstream.engines.zoo.onnx_import import inspect_onnx
from detstream.engines.zoo.resolve import resolve_model
from tests.conftest import REPO, run_cli, run_main, shared_path
from tests.helpers.model_mirror import MirrorServer

NANO = "yolox_nano.onnx"


@pytest.fixture()
def nano_bytes() -> bytes:
    return shared_path("models/yolox_nano/yolox_nano.onnx").read_bytes()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DETSTREAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def mirror(nano_bytes, monkeypatch):
    with MirrorServer({NANO: nano_bytes}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        yield server


def test_first_use_downloads_and_the_second_uses_the_cache(cache, mirror, nano_bytes):
    notes: list[str] = []
    source = resolve_model("yolox-nano", log=notes.append)
    assert source.is_onnx and source.path == cache / "models" / NANO
    assert source.path.read_bytes() == nano_bytes
    assert source.spec.class_names == COCO80 and source.spec.layout == "yolox"
    assert mirror.requests == {NANO: 1}
    again = resolve_model("YOLOX_Nano")  # spellings of one name
    assert again.path == source.path and mirror.requests == {NANO: 1}
    assert sorted(p.name for p in (cache / "models").iterdir()) == [
        NANO, NANO + ".lock", NANO + ".sha256"]


def test_a_transfer_cut_midway_resumes_and_completes(cache, mirror, nano_bytes):
    mirror.cut_next = 1
    source = resolve_model("yolox-nano")
    assert source.path.read_bytes() == nano_bytes
    assert mirror.requests[NANO] == 2 and mirror.ranges == [f"bytes={len(nano_bytes) // 2}-"]


def test_a_damaged_download_is_refused_and_removed(cache, mirror):
    mirror.damage.add(NANO)
    with pytest.raises(UserInputError, match="is not the expected model.*it was deleted"):
        resolve_model("yolox-nano")
    assert not (cache / "models" / NANO).exists()
    assert not (cache / "models" / (NANO + ".part")).exists()


def test_a_cached_file_changed_since_it_was_verified_is_fetched_again(cache, mirror, nano_bytes):
    path = resolve_model("yolox-nano").path
    path.write_bytes(nano_bytes[:-10] + bytes(10))
    assert cached_file(NANO) is None
    notes: list[str] = []
    assert resolve_model("yolox-nano", log=notes.append).path.read_bytes() == nano_bytes
    assert mirror.requests[NANO] == 2 and any("changed since it was verified" in n
                                              for n in notes)


def test_a_missing_file_on_the_mirror_is_one_clear_error(cache, nano_bytes, monkeypatch):
    with MirrorServer({}) as empty:
        monkeypatch.setenv(MIRROR_ENV, empty.url)
        result = run_cli("run", "--model", "yolox-nano", "--max-frames", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert f"{empty.url}/{NANO} answered 404" in line and str(cache / "models" / NANO) in line


def test_offline_with_nothing_cached_names_the_file_and_where_it_goes(cache, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(UserInputError) as info:
        resolve_model("yolox-nano")
    message = str(info.value)
    assert "cannot download yolox_nano.onnx from http://127.0.0.1:9/yolox_nano.onnx" in message
    assert str(cache / "models" / NANO) in message and "--weights" in message


def test_two_processes_fetching_at_once_download_once(cache, mirror, nano_bytes):
    script = ("from detstream.engines.zoo.resolve import resolve_model; "
              "print(resolve_model('yolox-nano').path)")
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert {out.strip() for out, _ in outputs} == {str(cache / "models" / NANO)}
    assert mirror.requests == {NANO: 1}
    assert (cache / "models" / NANO).read_bytes() == nano_bytes


def test_weights_use_the_users_file_without_a_download(cache, mirror):
    path = shared_path("models/yolox_nano/yolox_nano.onnx")
    source = resolve_model("yolox-nano", weights=path)
    assert source.path == path and mirror.requests == {}
    assert source.spec.name == "yolox-nano" and source.spec.class_names == COCO80


def test_weights_of_another_model_are_refused(tmp_path, cache, mirror):
    from detstream.engines.export.onnx import export_onnx
    from detstream.engines.zoo import DEFAULT_WEIGHTS, load_model

    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the embedded default model is not built yet")
    model, spec, _ = load_model("default")
    other, _ = export_onnx(model, spec, tmp_path / "ours.onnx", 416)
    with pytest.raises(UserInputError, match="is not yolox-nano: .*xywh_scores"):
        resolve_model("yolox-nano", weights=other)


def test_an_80_class_onnx_without_names_gets_the_coco_names_with_a_note():
    path = shared_path("models/yolox_nano/yolox_nano.onnx")
    notes: list[str] = []
    spec = inspect_onnx(path, log=notes.append)
    assert spec.class_names == COCO80
    assert len(notes) == 1 and "using the COCO names" in notes[0]
    names = shared_path("models/yolox_nano/coco_classes.txt")
    assert inspect_onnx(path, names).class_names[3] == "motorbike"  # --names still wins


def test_unknown_names_and_files_are_one_line():
    with pytest.raises(UserInputError, match="neither a model name"):
        resolve_model("yolox-huge")
    with pytest.raises(UserInputError, match="does not exist"):
        resolve_model("missing.onnx")


def test_models_lists_the_names_and_what_is_cached(cache, mirror):
    before = run_main("models")
    assert before.returncode == 0, before.stderr
    row = next(line for line in before.stdout.splitlines() if line.startswith("yolox-nano"))
    assert "Apache-2.0" in row and "25.8" in row and row.rstrip().endswith("no")
    fetched = run_main("models", "--fetch", "yolox-nano")
    assert fetched.returncode == 0, fetched.stderr
    assert str(cache / "models" / NANO) in fetched.stdout
    after = run_main("models")
    row = next(line for line in after.stdout.splitlines() if line.startswith("yolox-nano"))
    assert row.rstrip().endswith("yes") and mirror.requests == {NANO: 1}


def test_a_real_video_by_model_name_tracks_people(tmp_path, cache, mirror):
    video = shared_path("videos/one-by-one-person-detection.mp4")
    out, jsonl = tmp_path / "out.mp4", tmp_path / "dets.jsonl"
    result = run_main("run", "--model", "yolox-nano", "--source", str(video), "--classes",
                      "person", "--max-frames", "250", "--output", str(out), "--save-json",
                      str(jsonl))
    assert result.returncode == 0, result.stderr[-2000:]
    frames = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(frames) == 250
    labels = Counter()
    lengths = Counter()
    for frame in frames:
        for det in frame["detections"]:
            labels[det["class"]] += 1
            if det.get("track_id") is not None:
                lengths[det["track_id"]] += 1
    # People walk in one at a time from about frame 70 (10 fps): one is tracked for 10 s.
    assert set(labels) == {"person"} and labels["person"] >= 100
    assert lengths and max(lengths.values()) >= 100
    import av

    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 250


def test_an_imported_model_gets_an_fp16_copy_that_matches_it(tmp_path):
    import cv2

    from detstream.engines.export.fp16 import check_onnx_parity, convert_to_fp16
    from detstream.engines.export.metadata import onnx_precision

    source = resolve_model("yolox-nano", weights=shared_path(
        "models/yolox_nano/yolox_nano.onnx"))
    images = sorted(shared_path("coco128/images/train2017").glob("*.jpg"))[:8]
    frames = [cv2.imread(str(path)) for path in images]
    half = convert_to_fp16(source.path, tmp_path / "nano16.onnx")
    assert onnx_precision(half) == "fp16"
    report = check_onnx_parity(source.path, half, source.spec, frames)
    assert report.passed and report.detections >= 20, report.summary()
    assert report.matched >= report.detections - 2


def test_export_of_a_named_model_needs_half(tmp_path, cache, mirror):
    result = run_cli("export", "--model", "yolox-nano", "--out", str(tmp_path / "x.onnx"))
    assert result.returncode == 2 and "pass --half for an FP16 copy" in result.stderr
    result = run_main("export", "--model", "yolox-nano", "--half", "--out",
                      str(tmp_path / "x.onnx"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FP16 parity" in result.stdout and (tmp_path / "x.onnx").is_file()


def test_the_torchvision_names_are_torchvisions_own_files():
    from torchvision.models import get_weight

    from detstream.engines.zoo.catalog import CATALOG
    from detstream.engines.zoo.torchvision_models import TORCHVISION_MODELS

    named = [entry for entry in CATALOG.values() if entry.kind == "torchvision"]
    assert len(named) == 3
    for entry in named:
        weights = get_weight(TORCHVISION_MODELS[entry.torchvision].weights)
        assert entry.url == weights.url and weights.url.endswith(entry.file_name)
        assert entry.file_name.endswith(f"-{entry.hash_prefix}.pth")
        assert entry.coco_map == weights.meta["_metrics"]["COCO-val2017"]["box_map"]


@pytest.fixture(scope="module")
def ssdlite_weights(tmp_path_factory):
    """Random SSDlite weights saved as torchvision saves its files (no download here)."""
    import torch

    from detstream.engines.zoo.torchvision_models import build_torchvision_detector

    torch.manual_seed(0)
    model, _ = build_torchvision_detector("ssdlite320_mobilenet_v3_large")
    path = tmp_path_factory.mktemp("weights") / "ssdlite320_mobilenet_v3_large_coco-a79551df.pth"
    torch.save({key: value for key, value in model.state_dict().items()}, path)
    return path


def test_a_torchvision_model_by_name_runs_through_onnx(cache, ssdlite_weights):
    from detstream.engines.export.parity import sample_frames
    from detstream.engines.predict import Predictor
    from detstream.engines.runtime.select import open_backend

    notes: list[str] = []
    source = resolve_model("ssdlite320", weights=ssdlite_weights, log=notes.append)
    assert source.is_onnx and source.path.parent == cache / "onnx"
    assert source.spec.name == "ssdlite320" and source.spec.class_names == COCO80
    assert source.spec.layout == "xywh_scores" and tuple(source.spec.input_size) == (320, 320)
    assert any("exporting ssdlite320" in note for note in notes)
    exported = source.path.stat().st_mtime_ns
    backend = open_backend("ssdlite320", "onnxruntime", weights=ssdlite_weights)
    assert source.path.stat().st_mtime_ns == exported  # exported once
    (dets,) = Predictor(backend, conf=0.0)(sample_frames(1))
    assert len(dets) > 0 and set(dets.class_names) <= set(COCO80)


def test_a_torchvision_download_without_its_hash_is_refused(cache, ssdlite_weights,
                                                             monkeypatch):
    name = ssdlite_weights.name
    with MirrorServer({name: ssdlite_weights.read_bytes()}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(UserInputError, match="failed its check.*does not start with a79551df"):
            resolve_model("ssdlite320")
    assert not (cache / "models" / name).exists()


def test_a_torchvision_model_runs_on_the_torch_backend_too(cache, ssdlite_weights):
    import torch

    from detstream.engines.export.parity import sample_frames
    from detstream.engines.process.preprocess import Preprocessor
    from detstream.engines.runtime.select import open_backend

    on_torch = open_backend("ssdlite320", "torch", "cpu", weights=ssdlite_weights)
    on_onnx = open_backend("ssdlite320", "onnxruntime", weights=ssdlite_weights)
    assert on_torch.spec == on_onnx.spec
    batch, _ = Preprocessor(on_torch.spec)(sample_frames(2))
    a, b = on_torch.infer(batch), on_onnx.infer(batch)
    assert a.shape == b.shape
    assert float((a[:, 4:] - b[:, 4:]).abs().max()) < 1e-3
    assert float((a[:, :4] - b[:, :4]).abs().max() / a[:, :4].abs().max()) < 1e-3
    assert torch.isfinite(a).all()
