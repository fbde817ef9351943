"""MOTChallenge files: ``gt/gt.txt`` and tracker results, and ``seqinfo.ini``.

Rows are ``frame, id, x, y, w, h, conf, class, visibility``: 1-based frames and ids, boxes as
top-left corner and size in 0-based pixel coordinates. Ground truth uses ``conf`` as the
"consider" flag (0 for targets that are fully hidden) and ``class`` as class id + 1; tracker
results put the score in ``conf`` and ``-1`` in the last columns.
"""

from __future__ import annotations

import configparser
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TextIO

import numpy as np

from detstream.engines.boxes import tlwh_to_xyxy
from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections


def _fmt(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class MotWriter:
    """Stream rows of a MOTChallenge file, frame by frame.

    Args:
        path: file to write (its folder is created).
        ground_truth: write the ground-truth flavour (consider flag, class + 1, visibility)
            instead of the tracker-result flavour (score, -1, -1, -1).
        append: add rows after what the file holds (a resumed run) instead of starting it
            empty.
    """

    def __init__(self, path: str | Path, ground_truth: bool = False,
                 append: bool = False) -> None:
        self.path = Path(path)
        self.ground_truth = ground_truth
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = self.path.open("a" if append else "w", encoding="utf-8",
                                            newline="\n")

    def write(self, frame: int, detections: Detections) -> None:
        """Write the rows of one frame (``frame`` is 1-based); untracked boxes are skipped."""
        xywh = detections.xywh
        vis = detections.data.get("visibility")
        lines = []
        for i in range(len(detections)):
            tid = int(detections.track_ids[i])
            if tid < 0:
                continue
            x, y, w, h = (_fmt(float(v)) for v in xywh[i])
            if self.ground_truth:
                v = float(vis[i]) if vis is not None else 1.0
                lines.append(f"{frame},{tid},{x},{y},{w},{h},{int(v > 0)},"
                             f"{int(detections.class_ids[i]) + 1},{v:.4f}\n")
            else:
                lines.append(f"{frame},{tid},{x},{y},{w},{h},{float(detections.scores[i]):.4f},"
                             "-1,-1,-1\n")
        self._file.writelines(lines)

    def flush(self) -> None:
        """Hand the rows written so far to the operating system."""
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MotWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def write_mot(path: str | Path, frames: Iterable[tuple[int, Detections]],
              ground_truth: bool = False) -> Path:
    """Write a whole MOT file from ``(frame, detections)`` pairs (1-based frames)."""
    with MotWriter(path, ground_truth=ground_truth) as writer:
        for frame, detections in frames:
            writer.write(frame, detections)
    return Path(path)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a text file; one clear error when it is not text."""
    with path.open("r", encoding="utf-8") as file:
        try:
            yield from enumerate(file, start=1)
        except UnicodeDecodeError:
            raise UserInputError(f"{path} is not a text file; a MOT file holds lines of "
                                 "comma-separated numbers (frame,id,x,y,w,h,...)") from None


def _parse_rows(path: Path) -> Iterator[tuple[int, list[float]]]:
    for lineno, line in _lines(path):
        text = line.strip()
        if not text:
            continue
        parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
        if len(parts) < 6:
            raise UserInputError(
                f"{path}:{lineno}: a MOT row needs at least 6 comma-separated values "
                f"(frame,id,x,y,w,h,...), got {len(parts)}: {text[:80]!r}"
            )
        try:
            values = [float(p) for p in parts[:10]]
        except ValueError:
            header = " (MOT files have no header line; remove it)" if lineno == 1 else ""
            raise UserInputError(
                f"{path}:{lineno}: a MOT row must hold numbers only, got {text[:80]!r}{header}"
            ) from None
        if not all(math.isfinite(v) for v in values):
            raise UserInputError(f"{path}:{lineno}: a MOT row must hold finite numbers, got "
                                 f"{text[:80]!r}")
        if values[0] < 1 or values[0] != int(values[0]):
            raise UserInputError(
                f"{path}:{lineno}: frame numbers are whole numbers from 1, got {parts[0]!r}"
            )
        if values[4] < 0 or values[5] < 0:
            raise UserInputError(f"{path}:{lineno}: box width and height must not be negative")
        yield lineno, values


def read_mot(path: str | Path, class_names: tuple[str, ...] = (),
             empty_ok: bool = True) -> dict[int, Detections]:
    """Read a MOT file into ``{frame: Detections}`` (frames 1-based; frames with no rows absent).

    ``scores`` hold the conf column, ``class_ids`` the class column minus 1 (or -1 when absent),
    ``track_ids`` the id column (int64: ids are not bounded by 2**31), and
    ``data["visibility"]`` the visibility column (1 when absent).

    Args:
        path: the file.
        class_names: names for the class ids.
        empty_ok: a file without rows is a valid answer (a tracker that found nothing); pass
            False where rows are required (ground truth, detections to track).

    Raises:
        UserInputError: the file is missing, has no rows (unless ``empty_ok``) or a row is
            malformed (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"MOT file {path} does not exist; pass the path of a gt.txt or "
                             "tracker result file")
    rows: dict[int, list[list[float]]] = {}
    for _, values in _parse_rows(path):
        values += [-1.0] * (9 - len(values))
        rows.setdefault(int(values[0]), []).append(values)
    if not rows and not empty_ok:
        raise UserInputError(f"MOT file {path} holds no rows; expected lines of "
                             "frame,id,x,y,w,h,... (is it the right file?)")
    out = {}
    for frame, vals in sorted(rows.items()):
        arr = np.asarray(vals, np.float64)
        boxes = tlwh_to_xyxy(arr[:, 2:6])
        classes = np.where(arr[:, 7] > 0, arr[:, 7] - 1, -1)
        vis = np.where(arr[:, 8] >= 0, arr[:, 8], 1.0)
        out[frame] = Detections(
            boxes=boxes, scores=arr[:, 6], class_ids=classes.astype(np.int32),
            track_ids=arr[:, 1].astype(np.int64), class_names=class_names,
            data={"visibility": vis.astype(np.float32)},
        )
    return out


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``."""

    name: str
    frame_rate: float
    length: int
    width: int
    height: int
    im_dir: str = "img1"
    im_ext: str = ".jpg"


def write_seqinfo(path: str | Path, info: SeqInfo, extra: dict[str, str] | None = None) -> Path:
    """Write ``seqinfo.ini``; ``extra`` keys go to a ``[detstream]`` section."""
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep key case
    parser["Sequence"] = {
        "name": info.name,
        "imDir": info.im_dir,
        "frameRate": _fmt(info.frame_rate),
        "seqLength": str(info.length),
        "imWidth": str(info.width),
        "imHeight": str(info.height),
        "imExt": info.im_ext,
    }
    if extra:
        parser["detstream"] = extra
    path = Path(path)
    with path.open("w", encoding="utf-8") as file:
        parser.write(file, space_around_delimiters=False)
    return path


def read_seqinfo(path: str | Path) -> SeqInfo:
    """Read the ``[Sequence]`` section of a ``seqinfo.ini``."""
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    if not parser.read(path, encoding="utf-8") or "Sequence" not in parser:
        raise UserInputError(f"{path} is not a MOTChallenge seqinfo.ini (no [Sequence] section)")
    seq = parser["Sequence"]
    try:
        return SeqInfo(
            name=seq.get("name", Path(path).parent.name),
            frame_rate=float(seq["frameRate"]),
            length=int(seq["seqLength"]),
            width=int(seq.get("imWidth", "0")),
            height=int(seq.get("imHeight", "0")),
            im_dir=seq.get("imDir", "img1"),
            im_ext=seq.get("imExt", ".jpg"),
        )
    except (KeyError, ValueError) as exc:
        raise UserInputError(f"{path}: missing or malformed key in [Sequence]: {exc}") from None
