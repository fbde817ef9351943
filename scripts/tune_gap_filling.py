"""Score gap-filling settings (:class:`GapFill`) on TUD-Campus and held-out synthetic scenes.

Tracks every sequence online once with botsort (TUD-Campus's public detections at 25 fps; the
``bench mot`` scenes' two detection streams: the default model and degraded truth), then fills
the gaps with each setting and scores it with TrackEval. Prints a line per setting with the
mean over all sequences and writes every figure as JSON.

    python scripts/tune_gap_filling.py --json gap_grid.json

Needs ``../shared/data/mot15/TUD-Campus`` (or ``--tud DIR``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from detstream.engines.data.mot import read_mot, write_mot
from detstream.engines.metrics.mot import evaluate_mot
from detstream.stream.bench.mot import model_detector, scene_configs, scene_name, track_scene
from detstream.stream.track.interpolate import GapFill, interpolate_tracks

ROOT = Path(__file__).resolve().parents[1]
SECONDS = (0.25, 0.5, 1.0, 2.0, 4.0)
JUMPS = (0.5, 1.0, 2.0, np.inf)


def fill_and_write(source: Path, target: Path, fps: float, fill: GapFill | None) -> None:
    frames = read_mot(source)
    if fill is not None:
        frames, _ = interpolate_tracks(frames, fps, fill)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_mot(target, sorted(frames.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tud", type=Path, default=ROOT.parent / "shared/data/mot15/TUD-Campus")
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="detstream-gaps-") as tmp:
        root = Path(tmp)
        subprocess.run([sys.executable, "-m", "detstream", "track", "--dets",
                        str(args.tud / "det.txt"), "--out", str(root / "tud_online.txt"),
                        "--fps", "25", "--no-interpolate"], check=True)
        (root / "tud_gt" / "TUD-Campus" / "gt").mkdir(parents=True)
        shutil.copy(args.tud / "gt.txt", root / "tud_gt" / "TUD-Campus" / "gt" / "gt.txt")
        configs = scene_configs(args.scenes, 300, (640, 360), 30.0)
        detector = model_detector("default", "auto", 0.1)
        for config in configs:
            track_scene(config, detector, root / "synth", {"botsort": ("botsort", {})}, ())
            print(f"tracked {scene_name(config)}", flush=True)
        names = [scene_name(c) for c in configs]
        settings = [None] + [GapFill(max_seconds=s, max_jump=j)
                             for s, j in itertools.product(SECONDS, JUMPS)]
        rows = []
        for fill in settings:
            shutil.rmtree(root / "pred", ignore_errors=True)
            fill_and_write(root / "tud_online.txt", root / "pred/tud/TUD-Campus.txt", 25.0, fill)
            tud = evaluate_mot(root / "tud_gt", root / "pred/tud")[0]
            streams = {}
            for stream in ("model", "noisy-truth"):
                for name in names:
                    fill_and_write(root / "synth/pred" / stream / "botsort" / f"{name}.txt",
                                   root / "pred" / stream / f"{name}.txt", 30.0, fill)
                streams[stream] = evaluate_mot(root / "synth/gt", root / "pred" / stream)
            every = [tud] + [s for _, per in streams.values() for s in per.values()]
            label = "online" if fill is None else \
                f"{fill.max_seconds:g} s, jump {fill.max_jump:g}"
            row = {"setting": label, "tud": tud.to_dict(),
                   **{k: v[0].to_dict() for k, v in streams.items()},
                   **{f"mean_{m}": float(np.mean([getattr(s, m) for s in every]))
                      for m in ("HOTA", "MOTA", "IDF1")}}
            rows.append(row)
            print(f"{label:<18} TUD {tud.HOTA:.3f}/{tud.MOTA:.3f}/{tud.IDF1:.3f} FP {tud.FP:<4}"
                  + "".join(f" | {k} {v[0].HOTA:.3f}/{v[0].MOTA:.3f}/{v[0].IDF1:.3f} "
                            f"FP {v[0].FP:<5}" for k, v in streams.items())
                  + f" | mean {row['mean_HOTA']:.4f}/{row['mean_MOTA']:.4f}/"
                    f"{row['mean_IDF1']:.4f}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
