"""HOTA, CLEAR (MOTA, IDSW, FP, FN, MT, ML) and Identity (IDF1) metrics through TrackEval.

TrackEval is the maintained reference implementation; we only arrange files the way its
MOTChallenge 2D-box dataset reader expects (in a temporary folder) and read its results, so the
figures are exactly TrackEval's. No preprocessing (distractor removal) is applied, as for MOT15.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from detstream.engines.data.mot import read_mot, read_seqinfo
from detstream.engines.errors import UserInputError

TRACKER = "detstream"


@dataclass(frozen=True)
class MotScores:
    """Tracking scores of one sequence or of all sequences combined."""

    HOTA: float
    DetA: float
    AssA: float
    MOTA: float
    IDF1: float
    IDSW: int
    FP: int
    FN: int
    MT: int
    ML: int
    frames: int
    Frag: int = 0  # fragmentations: a truth track's interruptions (CLEAR's Frag)

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (f"HOTA {self.HOTA:.4f}  DetA {self.DetA:.4f}  AssA {self.AssA:.4f}  "
                f"MOTA {self.MOTA:.4f}  IDF1 {self.IDF1:.4f}  IDSW {self.IDSW}  FP {self.FP}  "
                f"FN {self.FN}  MT {self.MT}  ML {self.ML}")


@dataclass(frozen=True)
class SequencePair:
    """One sequence: its ground truth, the tracker's result and its length in frames."""

    name: str
    gt: Path
    pred: Path
    frames: int  # filled in once the ground truth has been read


def _seqinfo_length(gt: Path) -> int | None:
    """Frames of a sequence from a seqinfo.ini next to (or above) gt.txt; None without one."""
    for ini in (gt.parent / "seqinfo.ini", gt.parent.parent / "seqinfo.ini"):
        if ini.is_file():
            return read_seqinfo(ini).length
    return None


def _seq_length(gt: Path, last_row_frame: int) -> int:
    """Frames of a sequence: from a seqinfo.ini next to (or above) gt.txt, else the last
    frame that has a ground-truth row."""
    length = _seqinfo_length(gt)
    return last_row_frame if length is None else length


def _pairs(gt: Path, pred: Path) -> list[SequencePair]:
    """Pair up sequences: two files, or two MOTChallenge folders (GT/SEQ/gt/gt.txt with
    PRED/SEQ.txt, or PRED/data/SEQ.txt)."""
    if not gt.exists():
        raise UserInputError(f"--gt {gt} does not exist")
    if not pred.exists():
        raise UserInputError(f"--pred {pred} does not exist")
    if gt.is_file() != pred.is_file():
        raise UserInputError("--gt and --pred must both be files or both be folders")
    if gt.is_file():
        # SEQ/gt/gt.txt (MOTChallenge) or SEQ/gt.txt: name the sequence after SEQ.
        seq = gt.parent.parent if gt.parent.name == "gt" else gt.parent
        return [SequencePair(seq.name or "seq", gt, pred, 0)]
    pairs = []
    for seq_gt in sorted(gt.glob("*/gt/gt.txt")):
        name = seq_gt.parent.parent.name
        candidates = [pred / f"{name}.txt", pred / "data" / f"{name}.txt"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise UserInputError(f"no tracker result for sequence {name}: expected "
                                 f"{candidates[0]}")
        pairs.append(SequencePair(name, seq_gt, found, 0))
    if not pairs:
        raise UserInputError(f"--gt {gt}: no SEQ/gt/gt.txt files inside")
    return pairs


def _scores(res: dict, frames: int) -> MotScores:
    hota, clear, ident = res["HOTA"], res["CLEAR"], res["Identity"]
    return MotScores(
        HOTA=float(np.mean(hota["HOTA"])), DetA=float(np.mean(hota["DetA"])),
        AssA=float(np.mean(hota["AssA"])), MOTA=float(clear["MOTA"]), IDF1=float(ident["IDF1"]),
        IDSW=int(clear["IDSW"]), FP=int(clear["CLR_FP"]), FN=int(clear["CLR_FN"]),
        MT=int(clear["MT"]), ML=int(clear["ML"]), frames=frames, Frag=int(clear["Frag"]))


def _metrics() -> list:
    """The TrackEval metrics scored, in the order their results are read."""
    import trackeval

    return [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
            trackeval.metrics.Identity({"PRINT_CONFIG": False})]


@dataclass(frozen=True)
class MotEvaluation:
    """TrackEval's scores of a folder of sequences, and what it combined them from.

    Attributes:
        combined: TrackEval's ``COMBINED_SEQ`` scores.
        sequences: each sequence's scores.
        raw: each sequence's TrackEval results (``{"HOTA": ..., "CLEAR": ..., "Identity":
            ...}``), what :func:`combine_mot` combines.
    """

    combined: MotScores
    sequences: dict[str, MotScores]
    raw: dict[str, dict]


def combine_mot(raw: dict[str, dict], frames: int) -> MotScores:
    """TrackEval's combined scores of some sequences from their per-sequence results (the
    ``raw`` of :class:`MotEvaluation`), as its ``COMBINED_SEQ`` would be for those alone:
    each metric's own ``combine_sequences``. ``frames`` is their total length."""
    if not raw:
        raise ValueError("combine_mot needs at least one sequence")
    combined = {metric.get_name(): metric.combine_sequences(
        {name: res[metric.get_name()] for name, res in raw.items()}) for metric in _metrics()}
    return _scores(combined, frames)


def evaluate_mot(gt: str | Path, pred: str | Path) -> tuple[MotScores, dict[str, MotScores]]:
    """Score tracker results against ground truth with TrackEval.

    Args:
        gt: a MOT ``gt.txt`` file, or a folder of ``SEQ/gt/gt.txt``.
        pred: a MOT result file, or a folder of ``SEQ.txt`` (or ``data/SEQ.txt``).

    Returns:
        ``(combined, per_sequence)``.

    Raises:
        UserInputError: missing files, unpaired sequences, or malformed rows (naming the line).
    """
    evaluation = evaluate_mot_detailed(gt, pred)
    return evaluation.combined, evaluation.sequences


def evaluate_mot_detailed(gt: str | Path, pred: str | Path, check_rows: bool = True
                          ) -> MotEvaluation:
    """:func:`evaluate_mot`, also keeping TrackEval's per-sequence results (to combine any
    subset of the sequences later with :func:`combine_mot`, without scoring them again).
    Arguments and errors as :func:`evaluate_mot`; ``check_rows=False`` skips reading the files
    with our reader first (for files already checked or written by us, scored many times),
    where a ``seqinfo.ini`` gives the sequence's length."""
    import trackeval

    pairs = []
    for pair in _pairs(Path(gt), Path(pred)):  # our reader names the line of a malformed row
        length = None if check_rows else _seqinfo_length(pair.gt)
        if length is not None:
            pairs.append(replace(pair, frames=length))
            continue
        # No ground truth would score every tracker 0 (or 1): nothing to measure against. No
        # tracks is a real result (every target missed).
        truth = read_mot(pair.gt, empty_ok=False)
        tracks = read_mot(pair.pred)
        frames = _seq_length(pair.gt, max(truth))
        if max(tracks, default=0) > frames:
            raise UserInputError(
                f"--pred {pair.pred} has rows for frame {max(tracks)} but sequence {pair.name} "
                f"has {frames} frames; pass the tracker's result for this sequence")
        pairs.append(replace(pair, frames=frames))
    with tempfile.TemporaryDirectory(prefix="detstream-mot-") as tmp:
        root = Path(tmp)
        for pair in pairs:
            (root / "gt" / pair.name / "gt").mkdir(parents=True)
            shutil.copyfile(pair.gt, root / "gt" / pair.name / "gt" / "gt.txt")
            (root / "trackers" / TRACKER / "data").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pair.pred, root / "trackers" / TRACKER / "data" / f"{pair.name}.txt")
        dataset_config = {
            "GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
            "TRACKERS_TO_EVAL": [TRACKER], "BENCHMARK": "MOT15", "SKIP_SPLIT_FOL": True,
            "DO_PREPROC": False, "PRINT_CONFIG": False,
            "SEQ_INFO": {pair.name: pair.frames for pair in pairs},
        }
        eval_config = {"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                       "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
                       "PLOT_CURVES": False, "DISPLAY_LESS_PROGRESS": True,
                       "BREAK_ON_ERROR": True, "LOG_ON_ERROR": None}
        evaluator = trackeval.Evaluator(eval_config)
        dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
        metrics = _metrics()
        # TrackEval prints progress lines, and a traceback before it raises.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                results, _ = evaluator.evaluate([dataset], metrics)
            except trackeval.utils.TrackEvalException as exc:
                raise UserInputError(f"TrackEval could not score the files: {exc}") from None
    per_seq = results["MotChallenge2DBox"][TRACKER]
    sequences = {pair.name: _scores(per_seq[pair.name]["pedestrian"], pair.frames)
                 for pair in pairs}
    combined = _scores(per_seq["COMBINED_SEQ"]["pedestrian"],
                       sum(pair.frames for pair in pairs))
    raw = {pair.name: per_seq[pair.name]["pedestrian"] for pair in pairs}
    return MotEvaluation(combined, sequences, raw)
