"""The command line as a user meets it: versions, doctor, synth, and one-line errors."""

from __future__ import annotations

import json

import av
import pytest

from detstream.engines import __version__
from detstream.engines.data.mot import read_mot, read_seqinfo
from tests.conftest import run_cli


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"detstream {__version__}"


def test_doctor_reports_versions_backends_and_encoders():
    result = run_cli("doctor")
    assert result.returncode == 0, result.stderr
    for heading in ("python", "torch", "onnxruntime", "opencv", "av", "GPUs",
                    "Inference backends", "Video encoders"):
        assert heading in result.stdout
    assert "ok onnxruntime-cpu" in result.stdout
    assert "ok libx264" in result.stdout  # H.264 output is what every video sink relies on
    report = json.loads(run_cli("doctor", "--json").stdout)
    backends = {b["name"]: b for b in report["backends"]}
    assert backends["torch-cpu"]["usable"]
    assert all(b["detail"] for b in backends.values())  # every "no" says why
    assert {e["name"] for e in report["encoders"] if e["usable"]} >= {"libx264"}


def test_synth_video_writes_decodable_h264_with_ground_truth(tmp_path):
    out = tmp_path / "scene"
    result = run_cli("synth", "video", str(out), "--frames", "45", "--size", "320x240",
                     "--fps", "15", "--seed", "2", "--camera-motion")
    assert result.returncode == 0, result.stderr
    with av.open(str(out / "video.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (320, 240)
        assert float(stream.average_rate) == 15
        frames = sum(1 for _ in container.decode(stream))
    assert frames == 45
    info = read_seqinfo(out / "seqinfo.ini")
    assert (info.length, info.width, info.height, info.frame_rate) == (45, 320, 240, 15.0)
    truth = read_mot(out / "gt" / "gt.txt")
    assert max(truth) <= 45 and len(truth) > 30
    scene = json.loads((out / "scene.json").read_text())
    assert scene["seed"] == 2 and scene["camera_motion"] is True


def test_synth_video_same_seed_same_ground_truth_bytes(tmp_path):
    args = ["--frames", "20", "--size", "256x144", "--seed", "8"]
    assert run_cli("synth", "video", str(tmp_path / "a"), *args).returncode == 0
    assert run_cli("synth", "video", str(tmp_path / "b"), *args).returncode == 0
    a = (tmp_path / "a" / "gt" / "gt.txt").read_bytes()
    assert a == (tmp_path / "b" / "gt" / "gt.txt").read_bytes() and a


def test_synth_bench_prints_frames_per_second(tmp_path):
    result = run_cli("synth", "video", str(tmp_path / "x"), "--frames", "30", "--size",
                     "640x360", "--bench")
    assert result.returncode == 0 and "frames/s" in result.stdout
    assert not (tmp_path / "x").exists()  # a benchmark writes nothing


def test_synth_dataset(tmp_path):
    result = run_cli("synth", "dataset", str(tmp_path / "d"), "--train", "12", "--val", "6",
                     "--imgsz", "192", "--seed", "1", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "data.yaml").is_file()
    assert len(list((tmp_path / "d" / "images" / "train").glob("*.jpg"))) == 12
    assert len(list((tmp_path / "d" / "labels" / "val").glob("*.txt"))) == 6


@pytest.mark.parametrize(
    "args, message",
    [
        (["synth", "video", "{tmp}/o", "--frames", "-5"], "--frames: must be a positive"),
        (["synth", "video", "{tmp}/o", "--frames", "ten"], "expected a whole number"),
        (["synth", "video", "{tmp}/o", "--size", "1280"], "write it like 1280x720"),
        (["synth", "video", "{tmp}/o", "--size", "32x32"], "too small"),
        (["synth", "video", "{tmp}/o", "--fps", "0"], "--fps: must be a positive number"),
        (["synth", "video", "{tmp}/file.txt/o"], "a part of its path is a file"),
        (["synth", "video", "{tmp}/file.txt"], "is an existing file"),
        (["synth", "dataset", "{tmp}/d", "--train", "0", "--val", "1"], "--train: must be"),
        (["synth", "dataset", "{tmp}/d", "--train", "5"], "--val"),
        (["synth", "dataset", "{tmp}/d", "--train", "5", "--val", "1", "--imgsz", "32"],
         "too small"),
        (["synth", "video", "{tmp}/o", "--bogus"], "unrecognized arguments: --bogus"),
        (["nonsense"], "invalid choice: 'nonsense'"),
        (["train", "--data", "{tmp}/d.yaml", "--augment", "zoom=2"], "--augment takes KEY=VALUE"),
        (["train", "--data", "{tmp}/d.yaml", "--augment", "scale=big"], "needs a number"),
        (["train", "--data", "{tmp}/d.yaml", "--augment", "scale=2"], "must be in [0, 0.99]"),
    ],
)
def test_user_mistakes_give_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "file.txt").write_text("not a folder")
    result = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and "Traceback" not in result.stderr
    assert lines[0].startswith("detstream")
