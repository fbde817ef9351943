"""An interrupted synth run leaves a playable video and matching ground truth."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import av
import pytest

from detstream.engines.data.mot import read_mot, read_seqinfo
from detstream.engines.data.synthetic import SceneConfig
from detstream.engines.data.synthetic.sequence import write_sequence
from tests.conftest import REPO


def decoded_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_an_exception_mid_run_still_finalises(tmp_path):
    count = 0

    def progress(n: int) -> None:
        nonlocal count
        count += n
        if count == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_sequence(tmp_path, SceneConfig(width=320, height=180, frames=500, seed=1),
                       progress=progress)
    assert decoded_frames(tmp_path / "video.mp4") == 12
    assert read_seqinfo(tmp_path / "seqinfo.ini").length == 12
    assert max(read_mot(tmp_path / "gt" / "gt.txt")) == 12


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_on_the_command_line(tmp_path, sig):
    out = tmp_path / "long"
    proc = subprocess.Popen(
        [sys.executable, "-m", "detstream", "synth", "video", str(out), "--frames", "100000",
         "--size", "320x180"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 60
    gt = out / "gt" / "gt.txt"
    while time.monotonic() < deadline and (not gt.exists() or gt.stat().st_size < 20_000):
        time.sleep(0.1)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    frames = read_seqinfo(out / "seqinfo.ini").length
    assert 0 < frames < 100000
    assert decoded_frames(out / "video.mp4") == frames
    assert max(read_mot(out / "gt" / "gt.txt")) == frames
