"""``detstream bench mot --public DIR``: tracking accuracy on real MOTChallenge sequences.

Every sequence folder under ``DIR`` (``det.txt`` with the public detections, ``gt.txt`` and
``seqinfo.ini``) is tracked at its own frame rate and frame size, the way ``detstream track``
tracks it, and two of its outputs are scored with TrackEval:

- ``online``: the tracker's output as it was (``detstream track --no-interpolate``);
- ``gap-filled``: that output with gaps inside tracks filled (``interpolate_tracks`` with the
  default :class:`GapFill`), what ``detstream track`` writes without flags.

Each output is scored per sequence and over all sequences together: TrackEval's
``COMBINED_SEQ`` (its sums of matches, misses and switches over the sequences, not a mean of
the sequences' scores).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from detstream.engines.data.mot import write_mot
from detstream.engines.errors import UserInputError
from detstream.engines.metrics.mot import MotScores, evaluate_mot
from detstream.engines.spec import Detections
from detstream.stream.bench.common import quiet
from detstream.stream.bench.tune import TrackedSequence, public_sequence
from detstream.stream.commands.track import track_detections
from detstream.stream.track import load_tracker_options, make_tracker
from detstream.stream.track.interpolate import GapFill, interpolate_tracks

#: The files a sequence folder holds.
SEQUENCE_FILES = ("det.txt", "gt.txt", "seqinfo.ini")
#: The outputs scored: name → what writes it.
OUTPUTS = {"online": "detstream track --no-interpolate",
           "gap-filled": "detstream track (default output)"}


def find_sequences(root: Path) -> list[Path]:
    """The sequence folders under ``root`` (each holding :data:`SEQUENCE_FILES`), by name;
    ``root`` itself when it is one.

    Raises:
        UserInputError: ``root`` is not a folder, or holds no sequence.
    """
    if not root.is_dir():
        raise UserInputError(f"--public {root}: not a folder")

    def is_sequence(folder: Path) -> bool:
        return all((folder / name).is_file() for name in SEQUENCE_FILES)

    if is_sequence(root):
        return [root]
    found = sorted((p for p in root.iterdir() if p.is_dir() and is_sequence(p)),
                   key=lambda p: p.name)
    if not found:
        raise UserInputError(f"--public {root}: no sequence folders inside (each needs "
                             f"{', '.join(SEQUENCE_FILES)})")
    return found


def load_sequences(root: Path, gt_root: Path) -> list[TrackedSequence]:
    """Every sequence under ``root`` (:func:`find_sequences`), its detections read once, at its
    ``seqinfo.ini`` frame rate and size; the truth copied to ``gt_root/NAME``."""
    return [public_sequence(folder, None, gt_root) for folder in find_sequences(root)]


def track_public(sequence: TrackedSequence, tracker: str, options: dict,
                 fill: GapFill | None = None) -> dict[str, dict[int, Detections]]:
    """``{output: {frame: tracks}}`` for each of :data:`OUTPUTS`, from one run of
    ``detstream track``'s own tracking (:func:`track_detections`) and gap filling."""
    tracking = make_tracker(tracker, sequence.fps, options, frame_size=sequence.size)
    online = track_detections(tracking, dict(enumerate(sequence.detections, 1)))
    filled, _ = interpolate_tracks(online, sequence.fps, fill or GapFill())
    return {"online": online, "gap-filled": filled}


def score_folder(gt_root: Path, pred: Path) -> dict:
    """TrackEval's scores of the tracks in ``pred`` (``SEQ.txt``) against the truth in
    ``gt_root`` (``SEQ/gt/gt.txt``): ``{"per_sequence": {SEQ: scores}, "combined": scores}``,
    ``combined`` being TrackEval's ``COMBINED_SEQ``."""
    combined, per_sequence = evaluate_mot(gt_root, pred)
    return {"per_sequence": {name: s.to_dict() for name, s in per_sequence.items()},
            "combined": combined.to_dict()}


def tracker_settings(tracker: str, options: dict, fps: float) -> dict:
    """The tracker's parameters in effect with ``options`` (for the report)."""
    config = getattr(make_tracker(tracker, fps, options), "config", None)
    return config.to_dict() if hasattr(config, "to_dict") else dict(options)


def bench_public(root: Path, tracker: str = "botsort", config: Path | None = None,
                 progress: Callable[[str], None] = quiet) -> dict:
    """Track and score every sequence under ``root`` (see the module's docstring).

    Args:
        root: a folder of MOTChallenge sequence folders (or one sequence folder).
        tracker: ``botsort`` or ``bytetrack``.
        config: a YAML of tracker parameters to override, as ``detstream track --config``.
        progress: called with a line per tracked sequence.

    Returns:
        ``{"root", "tracker", "config", "options", "tracker_config", "gap_fill",
        "sequences": {SEQ: {fps, size, length, frames_tracked}}, "outputs": {OUTPUT:
        {"per_sequence": {SEQ: scores}, "combined": scores}}, "seconds": {...}}``.
    """
    options = load_tracker_options(config)
    fill = GapFill()
    with tempfile.TemporaryDirectory(prefix="detstream-mot-public-") as tmp:
        work = Path(tmp)
        sequences = load_sequences(root, work / "gt")
        start = time.perf_counter()
        for sequence in sequences:
            for output, frames in track_public(sequence, tracker, options, fill).items():
                write_mot(work / output / f"{sequence.scene}.txt", frames.items())
            progress(f"{sequence.scene}: {len(sequence.detections)} frames tracked at "
                     f"{sequence.fps:g} fps")
        tracked = time.perf_counter() - start
        outputs = {output: score_folder(work / "gt", work / output) for output in OUTPUTS}
        scored = time.perf_counter() - start - tracked
    return {
        "root": str(root), "tracker": tracker, "config": None if config is None else str(config),
        "options": options, "tracker_config": tracker_settings(tracker, options, 30.0),
        "gap_fill": asdict(fill),
        "sequences": {s.scene: {"fps": s.fps, "size": list(s.size) if s.size else None,
                                "length": outputs["online"]["per_sequence"][s.scene]["frames"],
                                "frames_tracked": len(s.detections)} for s in sequences},
        "outputs": outputs,
        "seconds": {"tracking": round(tracked, 3), "scoring": round(scored, 3)},
    }


def print_public(report: dict) -> None:
    """The tables ``detstream bench mot --public`` prints: per output, a row per sequence and
    TrackEval's combined row."""
    head = (f"{'sequence':<16}{'HOTA':>7}{'DetA':>7}{'AssA':>7}{'MOTA':>8}{'IDF1':>7}"
            f"{'IDSW':>6}{'FP':>7}{'FN':>7}{'Frag':>6}")
    for output, entry in report["outputs"].items():
        print(f"{output}: {OUTPUTS[output]}, {report['tracker']}")
        print(head)
        rows = [*entry["per_sequence"].items(), ("COMBINED", entry["combined"])]
        for name, scores in rows:
            s = MotScores(**scores)
            print(f"{name:<16}{s.HOTA:>7.4f}{s.DetA:>7.4f}{s.AssA:>7.4f}{s.MOTA:>8.4f}"
                  f"{s.IDF1:>7.4f}{s.IDSW:>6}{s.FP:>7}{s.FN:>7}{s.Frag:>6}")
