"""Outputs that fail mid-run: a full disk (the kernel's /dev/full, a real 256 KB tmpfs) and a
folder removed while writing. One clear line names the output; the others are finalised."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from detstream.engines.data.mot import read_mot
from detstream.stream.cli import main
from tests.helpers.tiny import decoded_frames, tiny_checkpoint


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.safetensors", 96)


def _run(model, size: str = "160x96", **outputs: Path | str) -> list[str]:
    args = ["run", "--source", f"synthetic://?seed=1&size={size}&frames=100000",
            "--model", str(model), "--backend", "onnxruntime", "--threads", "1"]
    for flag, path in outputs.items():
        args += [f"--{flag.replace('_', '-')}", str(path)]
    return args



def _error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_a_full_disk_names_the_output_and_finalises_the_others(model, tmp_path, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full (a device that is always full) is absent")
    code = main(_run(model, output=tmp_path / "video.mp4", save_json="/dev/full",
                     save_mot=tmp_path / "tracks.txt", stats_json=tmp_path / "stats.json"))
    assert code == 1
    line = _error_line(capsys.readouterr().err)
    assert "JSON Lines output /dev/full" in line and "No space left" in line
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert decoded_frames(tmp_path / "video.mp4") >= stats["frames_out"] > 0
    tracks = read_mot(tmp_path / "tracks.txt")
    assert not tracks or max(tracks) <= stats["frames_out"] + 1


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KB tmpfs (needs root and a kernel that lets this container mount)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or 'not root'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_that_fills_up_stops_with_the_video_named(model, tmp_path, small_disk, capsys):
    code = main(_run(model, size="320x192", output=small_disk / "video.mp4",
                     save_json=tmp_path / "d.jsonl", stats_json=tmp_path / "stats.json"))
    assert code == 1
    line = _error_line(capsys.readouterr().err)
    assert f"video output {small_disk / 'video.mp4'}" in line and "No space left" in line
    stats = json.loads((tmp_path / "stats.json").read_text())
    records = [json.loads(r) for r in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert len(records) >= stats["frames_out"] > 20  # the JSON Lines output is complete
    assert [r["frame"] for r in records] == list(range(len(records)))


def test_a_removed_output_folder_is_noticed_and_named(model, tmp_path, capsys):
    kept, doomed = tmp_path / "kept", tmp_path / "doomed"
    jsonl = doomed / "d.jsonl"

    def remove_when_written() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if jsonl.exists() and jsonl.stat().st_size > 2000:
                shutil.rmtree(doomed)
                return
            time.sleep(0.05)

    remover = threading.Thread(target=remove_when_written)
    remover.start()
    code = main(_run(model, output=kept / "video.mp4", save_json=jsonl,
                     stats_json=kept / "stats.json"))
    remover.join()
    assert code == 1
    line = _error_line(capsys.readouterr().err)
    assert f"JSON Lines output {jsonl}" in line and "folder was removed" in line
    stats = json.loads((kept / "stats.json").read_text())
    assert decoded_frames(kept / "video.mp4") >= stats["frames_out"] > 0
