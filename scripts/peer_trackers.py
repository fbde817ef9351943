"""Run the open trackers we compare against on real MOTChallenge sequences, and score them.

For every sequence folder under ROOT (each with ``det.txt``, the public detections as
``frame,-1,x,y,w,h,score,-1,-1,-1``, ``gt.txt`` and ``seqinfo.ini``), each peer tracks the
public detections frame by frame over frames 1..seqLength (frames without a detection are
still passed, as empty frames), at the sequence's own frame rate:

- ``roboflow_botsort``: roboflow ``trackers`` ``BoTSORTTracker(frame_rate=fps,
  enable_cmc=False)`` (no images, so no camera-motion compensation), defaults otherwise;
- ``roboflow_ocsort``: ``OCSORTTracker(frame_rate=fps)``, defaults otherwise;
- ``roboflow_bytetrack``: ``ByteTrackTracker(frame_rate=fps)``, defaults otherwise;
- ``ultralytics_bytetrack``: Ultralytics ``BYTETracker`` with its own ``bytetrack.yaml``
  defaults. Releases whose ``BYTETracker.__init__`` takes ``frame_rate`` get the sequence's
  fps. 8.4.x takes ``BYTETracker(args)`` only, and keeps a lost track for ``track_buffer``
  (30) frames at any rate; it runs like that, as installed. ``--diagnostics`` also runs it
  with the buffer scaled the way the former ``frame_rate`` argument scaled it,
  ``int(fps / 30 * track_buffer)`` (``ultralytics_bytetrack_fps_buffer``).

MOT boxes (1-based top-left x, y, w, h) go to every tracker as they are (as x1 = x,
x2 = x + w), and come back as written in ``det.txt``: the roboflow trackers return the input
detections they kept, and we write those rows' own text back. Ultralytics returns its Kalman
filter's box, which is what it reports, so that box is written, to three decimals
(``--diagnostics`` adds a run that writes the matched detection's own box instead). Rows
the trackers leave unconfirmed (roboflow's tracker_id -1) are not written. Results go to
``OUT/PEER/SEQ.txt`` (``frame,id,x,y,w,h,score,-1,-1,-1``), and each peer's folder is
scored by ``detstream eval-mot`` (TrackEval's MotChallenge2DBox, no preprocessing) into
``OUT/PEER.json``, against ``OUT/gt/SEQ/gt/gt.txt`` and ``OUT/gt/SEQ/seqinfo.ini``, copies
of the sequences' own files.
A table per peer is printed: one row per sequence and the combined row, then the best peer's
HOTA on each sequence and the combined figures against issue 34's. With trackers 2.6.1 and
ultralytics 8.4.190 all four peers land within 0.0005 of those.

The peers live in a virtualenv of their own, outside the repository, never in detstream's:

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install trackers ultralytics lap

(``lap`` is what Ultralytics' matching imports; without it Ultralytics tries to install it
at run time.) Then, from the repository root:

    /work/peers-venv/bin/python scripts/peer_trackers.py --out /tmp/peers --diagnostics \\
        --summary docs/benchmarks/issue34/peers.json

``--root`` defaults to ../shared/data/mot15 beside the repository, ``--detstream`` to the
repository's .venv/bin/detstream.
"""

from __future__ import annotations

import argparse
import configparser
import datetime
import importlib.metadata
import inspect
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "mot15"
DEFAULT_DETSTREAM = REPO / ".venv" / "bin" / "detstream"
METRICS = ("HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN", "DetA", "AssA")
PEERS = ("roboflow_botsort", "roboflow_ocsort", "roboflow_bytetrack", "ultralytics_bytetrack")
# Issue 34's figures (combined over the seven MOT15 train sequences): HOTA, MOTA, IDF1.
QUOTED = {"roboflow_botsort": (0.377, 0.368, 0.505), "roboflow_ocsort": (0.367, 0.376, 0.489),
          "roboflow_bytetrack": (0.365, 0.351, 0.477),
          "ultralytics_bytetrack": (0.378, 0.360, 0.479)}
PACKAGES = ("trackers", "ultralytics", "supervision", "numpy", "scipy", "lap", "torch")


@dataclass
class Sequence:
    """One sequence: its seqinfo.ini figures and its public detections by frame."""

    name: str
    folder: Path
    fps: float
    length: int
    width: int
    height: int
    # frame -> (the x, y, w, h, score fields as written, boxes x y w h (N, 4), scores (N,))
    frames: dict[int, tuple[list[tuple[str, ...]], np.ndarray, np.ndarray]]


def read_sequence(folder: Path) -> Sequence:
    """Read seqinfo.ini and det.txt of one sequence folder."""
    ini = configparser.ConfigParser()
    ini.read(folder / "seqinfo.ini")
    info = ini["Sequence"]
    rows: dict[int, list[tuple[str, ...]]] = {}
    for line_no, line in enumerate((folder / "det.txt").read_text().splitlines(), 1):
        fields = [f.strip() for f in line.split(",")]
        if not line.strip():
            continue
        if len(fields) < 7:
            raise SystemExit(f"{folder / 'det.txt'}:{line_no}: expected 7+ fields: {line!r}")
        rows.setdefault(int(float(fields[0])), []).append(tuple(fields[2:7]))
    frames = {}
    for frame, texts in rows.items():
        values = np.array([[float(v) for v in t] for t in texts], dtype=np.float64)
        frames[frame] = (texts, values[:, :4].copy(), values[:, 4].copy())
    length = int(info["seqLength"])
    if frames and max(frames) > length:
        raise SystemExit(f"{folder}: det.txt has frame {max(frames)} > seqLength {length}")
    return Sequence(name=folder.name, folder=folder, fps=float(info["frameRate"]), length=length,
                    width=int(info["imWidth"]), height=int(info["imHeight"]), frames=frames)


def empty_frame() -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray]:
    return [], np.empty((0, 4), dtype=np.float64), np.empty((0,), dtype=np.float64)


def mot_row(frame: int, track_id: int, box: tuple[str, ...]) -> str:
    """``frame,id,x,y,w,h,score,-1,-1,-1`` from the box and score fields as text."""
    return f"{frame},{track_id}," + ",".join(box) + ",-1,-1,-1"


# --- roboflow trackers ------------------------------------------------------------------------

def roboflow_tracker(name: str) -> Callable[[Sequence], object]:
    """A factory of a roboflow ``trackers`` tracker for a sequence, defaults but frame rate."""
    import trackers

    def make(seq: Sequence) -> object:
        if name == "botsort":
            return trackers.BoTSORTTracker(frame_rate=seq.fps, enable_cmc=False)
        if name == "ocsort":
            return trackers.OCSORTTracker(frame_rate=seq.fps)
        if name == "bytetrack":
            return trackers.ByteTrackTracker(frame_rate=seq.fps)
        raise ValueError(name)

    return make


def run_roboflow(make: Callable[[Sequence], object], seq: Sequence) -> list[str]:
    """Track one sequence; rows of the confirmed detections, written as read."""
    import supervision as sv

    tracker = make(seq)
    lines = []
    for frame in range(1, seq.length + 1):
        texts, boxes, scores = seq.frames.get(frame, empty_frame())
        detections = sv.Detections(
            xyxy=sv.xywh_to_xyxy(boxes) if len(boxes) else np.empty((0, 4)),
            confidence=scores, class_id=np.full(len(boxes), -1, dtype=int),
            data={"row": np.arange(len(boxes))})
        tracked = tracker.update(detections)
        if len(tracked) == 0:
            continue
        for row, track_id in zip(tracked.data["row"], tracked.tracker_id, strict=True):
            if track_id >= 0:  # -1: not (yet) a confirmed track
                lines.append(mot_row(frame, int(track_id) + 1, texts[int(row)]))
    return lines


# --- Ultralytics ------------------------------------------------------------------------------

class UltralyticsBoxes:
    """The part of an Ultralytics ``Boxes`` (after ``.cpu().numpy()``) that ``BYTETracker``
    reads: ``xywh`` (centre x, centre y, w, h), ``xyxy``, ``conf``, ``cls``, ``len`` and
    boolean-mask indexing."""

    def __init__(self, ltwh: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.ltwh, self.conf, self.cls = ltwh, conf, cls

    @property
    def xywh(self) -> np.ndarray:
        out = self.ltwh.copy()
        out[:, :2] += out[:, 2:] / 2
        return out

    @property
    def xyxy(self) -> np.ndarray:
        out = self.ltwh.copy()
        out[:, 2:] += out[:, :2]
        return out

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: np.ndarray) -> UltralyticsBoxes:
        return UltralyticsBoxes(self.ltwh[index], self.conf[index], self.cls[index])


def ultralytics_settings() -> dict:
    """Ultralytics' own bytetrack.yaml, as shipped."""
    from ultralytics.utils import ROOT, YAML

    return dict(YAML.load(ROOT / "cfg" / "trackers" / "bytetrack.yaml"))


def ultralytics_rate_note() -> str:
    from ultralytics.trackers.byte_tracker import BYTETracker

    if "frame_rate" in inspect.signature(BYTETracker.__init__).parameters:
        return "BYTETracker(args, frame_rate=fps)"
    return ("BYTETracker(args): this release takes no frame_rate; lost tracks are kept "
            "track_buffer = 30 frames at every fps")


def ultralytics_tracker(scale_buffer: bool) -> Callable[[Sequence], object]:
    """A factory of Ultralytics' BYTETracker on its default settings, at a sequence's rate."""
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import IterableSimpleNamespace

    takes_rate = "frame_rate" in inspect.signature(BYTETracker.__init__).parameters

    def make(seq: Sequence) -> object:
        settings = ultralytics_settings()
        if takes_rate:
            return BYTETracker(IterableSimpleNamespace(**settings), frame_rate=seq.fps)
        if scale_buffer:  # what frame_rate did before it was dropped
            settings["track_buffer"] = int(seq.fps / 30.0 * settings["track_buffer"])
        return BYTETracker(IterableSimpleNamespace(**settings))

    return make


def run_ultralytics(make: Callable[[Sequence], object], seq: Sequence,
                    detection_box: bool = False) -> list[str]:
    """Track one sequence; rows of the tracks BYTETracker outputs (its own box, or with
    ``detection_box`` the matched detection's box as read)."""
    tracker = make(seq)
    lines = []
    for frame in range(1, seq.length + 1):
        texts, boxes, scores = seq.frames.get(frame, empty_frame())
        tracks = tracker.update(UltralyticsBoxes(boxes, scores, np.zeros(len(scores))))
        # rows: x1, y1, x2, y2, track_id, score, cls, idx (the detection's index)
        for x1, y1, x2, y2, track_id, _score, _cls, idx in tracks:
            if detection_box:
                lines.append(mot_row(frame, int(track_id), texts[int(idx)]))
            else:
                box = (f"{x1:.3f}", f"{y1:.3f}", f"{x2 - x1:.3f}", f"{y2 - y1:.3f}",
                       texts[int(idx)][4])
                lines.append(mot_row(frame, int(track_id), box))
    return lines


# --- running and scoring ----------------------------------------------------------------------

def peers(diagnostics: bool) -> dict[str, Callable[[Sequence], list[str]]]:
    """Peer name -> function tracking one sequence into MOT result lines."""
    found = {
        "roboflow_botsort": partial(run_roboflow, roboflow_tracker("botsort")),
        "roboflow_ocsort": partial(run_roboflow, roboflow_tracker("ocsort")),
        "roboflow_bytetrack": partial(run_roboflow, roboflow_tracker("bytetrack")),
        "ultralytics_bytetrack": partial(run_ultralytics, ultralytics_tracker(False)),
    }
    if diagnostics:
        found["ultralytics_bytetrack_fps_buffer"] = partial(run_ultralytics,
                                                            ultralytics_tracker(True))
        found["ultralytics_bytetrack_detbox"] = partial(run_ultralytics,
                                                        ultralytics_tracker(False),
                                                        detection_box=True)
    return found


def build_gt(sequences: list[Sequence], gt_dir: Path) -> None:
    """GTDIR/SEQ/gt/gt.txt and GTDIR/SEQ/seqinfo.ini, copies of the sequences' files."""
    for seq in sequences:
        (gt_dir / seq.name / "gt").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seq.folder / "gt.txt", gt_dir / seq.name / "gt" / "gt.txt")
        shutil.copyfile(seq.folder / "seqinfo.ini", gt_dir / seq.name / "seqinfo.ini")


def score(detstream: Path, gt_dir: Path, pred_dir: Path, json_path: Path) -> dict:
    """``detstream eval-mot`` on one peer's folder; its JSON."""
    subprocess.run([str(detstream), "eval-mot", "--gt", str(gt_dir), "--pred", str(pred_dir),
                    "--json", str(json_path)], check=True, stdout=subprocess.DEVNULL)
    return json.loads(json_path.read_text())


def pick(scores: dict) -> dict:
    return {k: (round(scores[k], 4) if isinstance(scores[k], float) else scores[k])
            for k in METRICS}


def table(name: str, result: dict) -> str:
    width = max(len(s) for s in [*result["sequences"], "combined"])
    head = f"{'':<{width}}  " + "  ".join(f"{m:>6}" for m in METRICS)
    lines = [f"== {name}", head]
    rows = [*result["sequences"].items(), ("combined", result["combined"])]
    for seq, s in rows:
        cells = [f"{s[m]:6.3f}" if isinstance(s[m], float) else f"{s[m]:6d}" for m in METRICS]
        lines.append(f"{seq:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="folder of sequence folders (det.txt, gt.txt, seqinfo.ini)")
    parser.add_argument("--out", type=Path, required=True,
                        help="OUT/PEER/SEQ.txt, OUT/PEER.json and OUT/gt are written here")
    parser.add_argument("--detstream", type=Path, default=DEFAULT_DETSTREAM,
                        help="the detstream command that scores (eval-mot)")
    parser.add_argument("--peers", nargs="*", default=None, help="only these peers")
    parser.add_argument("--diagnostics", action="store_true",
                        help="also run Ultralytics with the unscaled buffer and with "
                             "detection boxes written")
    parser.add_argument("--summary", type=Path, default=None,
                        help="write per-peer combined and per-sequence scores here (JSON)")
    args = parser.parse_args(argv)

    folders = sorted(p for p in args.root.iterdir()
                     if (p / "det.txt").is_file() and (p / "seqinfo.ini").is_file())
    if not folders:
        raise SystemExit(f"--root {args.root}: no sequence folders with det.txt and seqinfo.ini")
    sequences = [read_sequence(p) for p in folders]
    gt_dir = args.out / "gt"
    build_gt(sequences, gt_dir)

    chosen = peers(args.diagnostics)
    if args.peers:
        unknown = set(args.peers) - set(chosen)
        if unknown:
            raise SystemExit(f"unknown peers {sorted(unknown)}; known: {sorted(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in args.peers}

    results, seconds = {}, {}
    for name, track in chosen.items():
        pred_dir = args.out / name
        pred_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        for seq in sequences:
            lines = track(seq)
            (pred_dir / f"{seq.name}.txt").write_text("".join(f"{line}\n" for line in lines))
        seconds[name] = round(time.perf_counter() - start, 2)
        scores = score(args.detstream, gt_dir, pred_dir, args.out / f"{name}.json")
        results[name] = {"combined": pick(scores),
                         "sequences": {s: pick(v) for s, v in scores["sequences"].items()}}
        print(table(name, results[name]), flush=True)
        print()

    main_peers = [p for p in results if p in PEERS]
    best = {}
    for seq in sequences:
        if main_peers:
            winner = max(main_peers, key=lambda p: results[p]["sequences"][seq.name]["HOTA"])
            best[seq.name] = [winner, results[winner]["sequences"][seq.name]["HOTA"]]
    if best:
        print("best peer HOTA per sequence:")
        for seq, (peer, value) in best.items():
            print(f"  {seq:<14} {peer:<22} {value:.4f}")
    compared = {}
    for name in main_peers:
        got = [results[name]["combined"][m] for m in ("HOTA", "MOTA", "IDF1")]
        compared[name] = {"quoted": list(QUOTED[name]), "reproduced": got,
                          "max_abs_difference": round(max(abs(a - b) for a, b in
                                                          zip(got, QUOTED[name], strict=True)), 4)}
    if compared:
        print("combined HOTA / MOTA / IDF1, reproduced vs quoted:")
        for name, c in compared.items():
            print(f"  {name:<22} " + " / ".join(f"{v:.4f}" for v in c["reproduced"])
                  + "   vs " + " / ".join(f"{v:.3f}" for v in c["quoted"])
                  + f"   max |diff| {c['max_abs_difference']:.4f}")
    # The same over the diagnostic runs too: the highest bar any way of running a peer sets.
    best_any = {}
    if len(results) > len(main_peers):
        for seq in sequences:
            winner = max(results, key=lambda p: results[p]["sequences"][seq.name]["HOTA"])
            best_any[seq.name] = [winner, results[winner]["sequences"][seq.name]["HOTA"]]

    if args.summary is not None:
        try:
            root_text = "../" + str(args.root.resolve().relative_to(REPO.parent))
        except ValueError:
            root_text = str(args.root)
        summary = {name: result for name, result in results.items() if name in main_peers}
        diagnostics = {name: result for name, result in results.items()
                       if name not in main_peers}
        if diagnostics:
            summary["diagnostics"] = diagnostics
        summary.update({
            "quoted_vs_reproduced": compared,
            "best_peer_hota": best,
            **({"best_peer_hota_with_diagnostics": best_any} if best_any else {}),
            "sequences": {s.name: {"frameRate": s.fps, "seqLength": s.length,
                                   "imWidth": s.width, "imHeight": s.height}
                          for s in sequences},
            "settings": {
                "roboflow_botsort": "BoTSORTTracker(frame_rate=fps, enable_cmc=False)",
                "roboflow_ocsort": "OCSORTTracker(frame_rate=fps)",
                "roboflow_bytetrack": "ByteTrackTracker(frame_rate=fps)",
                "ultralytics_bytetrack": {
                    "bytetrack.yaml": ultralytics_settings(),
                    "frame_rate": ultralytics_rate_note()},
                "ultralytics_bytetrack_fps_buffer": "bytetrack.yaml with track_buffer = "
                                                    "int(fps / 30 * 30), as frame_rate did",
                "ultralytics_bytetrack_detbox": "ultralytics_bytetrack, the matched "
                                                "detection's box written instead of the "
                                                "tracker's",
            },
            "tracking_seconds": seconds,
            "versions": versions(),
            "command": "/work/peers-venv/bin/python scripts/peer_trackers.py --root "
                       f"{root_text} --out OUT" + (" --diagnostics" if args.diagnostics else "")
                       + f" --summary {args.summary}",
            "date": datetime.date.today().isoformat(),
            "machine": f"{cpu_name()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}, {platform.system()}",
        })
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
