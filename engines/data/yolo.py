"""YOLO-format detection datasets: ``data.yaml``, ``images/<split>/``, ``labels/<split>/``.

Each image ``.../images/<split>/NAME.jpg`` has a label file ``.../labels/<split>/NAME.txt`` with
one ``class cx cy w h`` row per box, coordinates normalised to [0, 1] by the image size. An image
without a label file is a background image (no boxes). Paths in ``data.yaml`` are relative to
its ``path`` key, which is itself relative to the yaml's folder; without ``path`` they are
relative to the yaml's folder, which is how Ultralytics reads them too (its
``check_det_dataset`` falls back to the yaml's folder, while a relative ``path`` such as ``.``
is taken from the working directory, or from its datasets folder when that does not exist).
So :func:`write_data_yaml` leaves ``path`` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detstream.engines.boxes import xyxy_to_cxcywh
from detstream.engines.errors import UserInputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class DataConfig:
    """A parsed ``data.yaml``.

    Attributes:
        path: the yaml file.
        root: the dataset root that split paths are relative to.
        names: class names, indexed by class id.
        splits: split name (``train``, ``val``, ``test``) to the folders or list files it names.
    """

    path: Path
    root: Path
    names: tuple[str, ...]
    splits: dict[str, tuple[Path, ...]]

    def images(self, split: str) -> list[Path]:
        """All image files of ``split``, sorted."""
        if split not in self.splits:
            known = ", ".join(sorted(self.splits)) or "none"
            raise UserInputError(f"{self.path} has no '{split}' split (it has: {known})")
        files: list[Path] = []
        for source in self.splits[split]:
            files.extend(_images_in(source, self.path))
        return sorted(set(files))


def _images_in(source: Path, yaml_path: Path) -> list[Path]:
    if source.is_dir():
        return [p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    if source.is_file() and source.suffix == ".txt":  # a list of image paths, one per line
        base = source.parent
        lines = source.read_text(encoding="utf-8").splitlines()
        return [(base / line.strip()).resolve() for line in lines if line.strip()]
    raise UserInputError(f"{yaml_path}: split path {source} does not exist")


def _path_text(yaml_path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise UserInputError(f"{yaml_path}: '{key}' must be a path (text), got {value!r}")
    return value


def load_data_yaml(path: str | Path) -> DataConfig:
    """Read a YOLO ``data.yaml`` (Ultralytics layout: ``path``, ``train``, ``val``, ``names``).

    Raises:
        UserInputError: missing file, no class names, or a split folder that does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"dataset file {path} does not exist; pass a YOLO data.yaml")
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserInputError(f"{path} is not a text file; pass a YOLO data.yaml") from None
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise UserInputError(f"{path} must be a mapping with train/val/names keys")
    names_doc = doc.get("names")
    if isinstance(names_doc, dict):
        try:
            ids = sorted(int(k) for k in names_doc)
        except (TypeError, ValueError):
            raise UserInputError(f"{path}: 'names' keys must be class ids 0..N-1") from None
        if ids != list(range(len(ids))):
            raise UserInputError(f"{path}: 'names' must number classes 0..{len(ids) - 1}")
        names = tuple(str(names_doc[k]) for k in sorted(names_doc, key=int))
    elif isinstance(names_doc, list) and names_doc:
        names = tuple(str(n) for n in names_doc)
    else:
        raise UserInputError(f"{path}: no class names; add 'names: [a, b, ...]'")
    count = doc.get("nc", len(names))
    if isinstance(count, bool) or not isinstance(count, int) or count != len(names):
        raise UserInputError(f"{path}: 'nc: {count}' must be the number of class names "
                             f"({len(names)}); fix it or remove the nc line")
    root = Path(_path_text(path, "path", doc.get("path") or "."))
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    splits: dict[str, tuple[Path, ...]] = {}
    for split in ("train", "val", "test"):
        value = doc.get(split)
        if not value:
            continue
        entries = [_path_text(path, split, e) for e in (value if isinstance(value, list)
                                                        else [value])]
        splits[split] = tuple(Path(e) if Path(e).is_absolute() else root / e for e in entries)
    return DataConfig(path=path, root=root, names=names, splits=splits)


def label_path(image: Path, folder: str = "labels") -> Path:
    """The label file of an image: its last ``images`` folder becomes ``folder``, suffix .txt.

    ``folder="identities"`` gives the image's identity file (see :func:`write_identities`)."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = folder
            break
    return Path(*parts).with_suffix(".txt")


def write_identities(path: str | Path, identities: np.ndarray) -> None:
    """Write an identity file: one integer per row of the image's label file, the identity of
    that object (the same number wherever the same object appears in the dataset).

    Identity files sit in an ``identities`` folder beside ``labels`` and are detstream's own
    addition: other YOLO tools ignore them, and they train the embedding head."""
    Path(path).write_text("".join(f"{int(i)}\n" for i in np.asarray(identities).tolist()),
                          encoding="utf-8")


def read_identities(path: str | Path, rows: int) -> np.ndarray | None:
    """Read an identity file written by :func:`write_identities`: int64 [rows], or None when
    the file does not exist.

    Raises:
        UserInputError: a malformed line, or a count that differs from the label file's rows.
    """
    path = Path(path)
    if not path.is_file():
        return None
    values = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values.append(int(line))
        except ValueError:
            raise UserInputError(f"{path}:{lineno}: expected one whole-number identity per "
                                 "line") from None
    if len(values) != rows:
        raise UserInputError(f"{path}: {len(values)} identities for {rows} labelled boxes; "
                             "rewrite it with one line per label row")
    return np.asarray(values, np.int64)


def read_labels(path: str | Path, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a YOLO label file.

    Returns:
        ``(class_ids, boxes)``: int32 [N] and float32 [N, 4] normalised ``cxcywh``. A missing file
        means a background image and gives N = 0.

    Raises:
        UserInputError: a malformed row (the message names file and line).
    """
    path = Path(path)
    if not path.is_file():
        return np.zeros(0, np.int32), np.zeros((0, 4), np.float32)
    classes, boxes = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UserInputError(f"{path}:{lineno}: expected numbers 'class cx cy w h'") from None
        if len(values) != 5:
            # Segment rows (class x1 y1 x2 y2 ...) become their bounding box.
            if len(values) >= 7 and len(values) % 2 == 1:
                xs, ys = values[1::2], values[2::2]
                x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
                values = [values[0], (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
            else:
                raise UserInputError(
                    f"{path}:{lineno}: expected 5 values 'class cx cy w h', got {len(values)}")
        cls = values[0]
        if cls != int(cls) or cls < 0 or (num_classes is not None and cls >= num_classes):
            limit = f" (the dataset has {num_classes} classes)" if num_classes else ""
            raise UserInputError(f"{path}:{lineno}: bad class id {parts[0]}{limit}")
        classes.append(int(cls))
        boxes.append(values[1:])
    return np.asarray(classes, np.int32), np.asarray(boxes, np.float32).reshape(-1, 4)


def write_labels(path: str | Path, class_ids: np.ndarray, boxes_xyxy: np.ndarray, width: int,
                 height: int) -> None:
    """Write a YOLO label file from pixel ``xyxy`` boxes of an image of ``width`` x ``height``."""
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    normalised = xyxy_to_cxcywh(boxes) / np.array([width, height, width, height], np.float64)
    rows = [f"{int(c)} {a:.6f} {b:.6f} {d:.6f} {e:.6f}\n"
            for c, (a, b, d, e) in zip(np.asarray(class_ids).tolist(), normalised.tolist(),
                                       strict=True)]
    Path(path).write_text("".join(rows), encoding="utf-8")


def write_data_yaml(path: str | Path, names: tuple[str, ...], splits: dict[str, str],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a ``data.yaml`` whose split paths are relative to its own folder (no ``path`` key:
    detstream and Ultralytics both read such paths from the yaml's folder)."""
    doc: dict[str, Any] = dict(splits)
    doc["nc"] = len(names)
    doc["names"] = dict(enumerate(names))
    if extra:
        doc.update(extra)
    path = Path(path)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
