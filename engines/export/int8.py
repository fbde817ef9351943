"""``detstream export --int8``: an INT8 copy of an FP32 ONNX file, kept only when the COCO
accuracy check finds it within the tolerance of FP32.

The check is part of the export: FP32 and INT8 are both scored (mAP50-95, the project's COCO
evaluation with ``detstream val``'s thresholds) on held-out labelled images that calibration
never saw. How much stays in FP32 is decided on the calibration frames alone
(:func:`~detstream.engines.export.quantize.quantize_model`), so the check judges one model,
once. The file that passes is written to ``NAME.int8.onnx`` with the figures, the calibration
source and the FP32 file's SHA-256 in its metadata; one that fails is never written, and an
older INT8 file of the same name is removed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from detstream.engines.cache import atomic_output, file_sha256
from detstream.engines.export.calibration import CalibrationData
from detstream.engines.export.metadata import (
    SPEC_KEY,
    int8_path,
    load_onnx,
    read_metadata,
    write_metadata,
)
from detstream.engines.export.quantize import prepare, quantize_model, stem_words
from detstream.engines.metrics.coco import EvalResult
from detstream.engines.process.preprocess import Preprocessor
from detstream.engines.runtime.onnxruntime_backend import OnnxRuntimeBackend
from detstream.engines.spec import ModelSpec
from detstream.engines.train.validate import evaluate_images

#: How much INT8 mAP50-95 may fall below FP32's before the INT8 file is refused.
DEFAULT_TOLERANCE = 0.01

Log = Callable[[str], None]


@dataclass(frozen=True)
class Int8Report:
    """What the INT8 export measured.

    Attributes:
        fp32_map50_95, fp32_map50: the FP32 file's scores on the check images.
        int8_map50_95, int8_map50: the INT8 model's, on the same images.
        tolerance: the largest mAP50-95 loss allowed.
        stem: first convolutions left in FP32 besides the decode tail.
        sqnr_db: per stem tried, the raw output's SQNR on the calibration frames (dB).
        check: what the check images were, in words; ``check_images`` how many.
        calibration: where the calibration frames came from; ``calibration_frames`` how many.
    """

    fp32_map50_95: float
    fp32_map50: float
    int8_map50_95: float
    int8_map50: float
    tolerance: float
    stem: int
    sqnr_db: dict[int, float]
    check: str
    check_images: int
    calibration: str
    calibration_frames: int

    @property
    def loss(self) -> float:
        """FP32's mAP50-95 less INT8's."""
        return self.fp32_map50_95 - self.int8_map50_95

    @property
    def passed(self) -> bool:
        """INT8 lost at most the tolerance."""
        return self.loss <= self.tolerance

    def summary(self) -> str:
        """Two lines for the terminal: what was quantized, and the check."""
        return (f"INT8 with {stem_words(self.stem)} in FP32 (output SQNR "
                f"{self.sqnr_db[self.stem]:.1f} dB on the calibration frames), calibrated on "
                f"{self.calibration_frames} frames of {self.calibration}\n"
                f"INT8 check on {self.check}: mAP50-95 {self.int8_map50_95:.4f} against FP32 "
                f"{self.fp32_map50_95:.4f} ({-self.loss:+.4f}, tolerance {self.tolerance:g}); "
                f"mAP50 {self.int8_map50:.4f} against {self.fp32_map50:.4f} - "
                f"{'ok' if self.passed else 'FAILED'}")

    def failure(self) -> str:
        """One line: why no INT8 file was written, with the figures and what to try."""
        return (f"INT8 lost too much accuracy: mAP50-95 {self.int8_map50_95:.4f} against FP32 "
                f"{self.fp32_map50_95:.4f} on {self.check} (tolerance {self.tolerance:g}); "
                "calibrate on more frames like those the model will see (--calibration, "
                "--calibration-frames), or allow more loss with --int8-tolerance")

    def record(self, fp32_path: Path) -> dict:
        """The ``int8`` entry of the INT8 file's metadata."""
        return {"passed": self.passed, "fp32_file": fp32_path.name,
                "fp32_sha256": file_sha256(fp32_path),
                "map50_95_fp32": round(self.fp32_map50_95, 4),
                "map50_95_int8": round(self.int8_map50_95, 4),
                "map50_fp32": round(self.fp32_map50, 4), "map50_int8": round(self.int8_map50, 4),
                "tolerance": self.tolerance, "check": self.check,
                "check_images": self.check_images, "calibration": self.calibration,
                "calibration_frames": self.calibration_frames,
                "fp32_stem_convolutions": self.stem,
                "sqnr_db": {str(stem): value for stem, value in self.sqnr_db.items()},
                "method": "onnxruntime quantize_static: QDQ, uint8 activations per tensor "
                          "(MinMax), int8 weights per channel, decode tail in FP32"}


def export_int8(fp32_path: str | Path, spec: ModelSpec, data: CalibrationData,
                tolerance: float = DEFAULT_TOLERANCE, out: str | Path | None = None,
                log: Log | None = None, checkpoint: str | Path | None = None) -> Int8Report:
    """Quantize ``fp32_path``, check it, and write it to ``out`` only if it passes.

    Args:
        fp32_path: the FP32 ONNX file (a detstream export, or an imported model).
        spec: its contract (the preprocessing the calibration frames go through).
        data: calibration frames and check images
            (:func:`~detstream.engines.export.calibration.calibration_data`).
        tolerance: the largest mAP50-95 loss against FP32 that is kept.
        out: where the INT8 file goes (default ``NAME.int8.onnx`` beside ``fp32_path``);
            written only when the check passes; an older file there is removed when it fails.
        log: progress lines.
        checkpoint: the detstream checkpoint ``fp32_path`` was exported from: its SHA-256 goes
            into the record, so the copy also serves runs of the checkpoint itself.

    Returns:
        The report; ``passed`` says whether ``out`` was written.
    """
    fp32_path = Path(fp32_path)
    out = Path(out) if out is not None else int8_path(fp32_path)
    log = log or (lambda message: None)
    pre = Preprocessor(spec, "cpu", torch.float32)
    inputs = [pre([frame])[0].numpy() for frame in data.frames]
    with tempfile.TemporaryDirectory(prefix="detstream-int8-") as folder:
        log(f"quantizing {fp32_path.name} on {len(inputs)} calibration frames")
        prepared = prepare(fp32_path, Path(folder) / "prepared.onnx")
        chosen = quantize_model(prepared, folder, inputs, log)
        log(f"scoring FP32 and INT8 on {data.check_source}")
        fp32, int8 = _score(fp32_path, spec, data), _score(chosen.path, spec, data)
        report = Int8Report(fp32.map50_95, fp32.map50, int8.map50_95, int8.map50, tolerance,
                            chosen.stem, chosen.sqnr_db, data.check_source, len(data.check),
                            data.source, len(data.frames))
        if report.passed:
            _write(chosen.path, out, spec, fp32_path, report,
                   Path(checkpoint) if checkpoint is not None else None)
        else:
            out.unlink(missing_ok=True)  # an INT8 file of an earlier export: no longer true
    return report


def _score(path: Path, spec: ModelSpec, data: CalibrationData) -> EvalResult:
    backend = OnnxRuntimeBackend(path, spec, "cpu")
    try:
        return evaluate_images(backend, data.check, data.class_names)
    finally:
        backend.close()


def _write(candidate: Path, out: Path, spec: ModelSpec, fp32_path: Path,
           report: Int8Report, checkpoint: Path | None) -> None:
    """The checked model with the FP32 file's metadata, precision ``int8`` and the check's
    record, renamed into place."""
    model = load_onnx(candidate, load_weights=True)
    extra = _fp32_extra(fp32_path)
    record = report.record(fp32_path)
    if checkpoint is not None:
        record.update(checkpoint_file=checkpoint.name, checkpoint_sha256=file_sha256(checkpoint))
    extra.update(precision="int8", int8=record)
    write_metadata(model, spec, extra)
    with atomic_output(out) as tmp:
        onnx.save(model, str(tmp))


def _fp32_extra(fp32_path: Path) -> dict:
    """What the FP32 file's detstream metadata adds to its spec (batch, architecture), for
    the INT8 file to keep."""
    metadata = read_metadata(load_onnx(fp32_path))
    stored = json.loads(metadata.get(SPEC_KEY, "{}"))
    known = set(ModelSpec.__dataclass_fields__)
    extra = {key: value for key, value in stored.items() if key not in known}
    if "max_batch" not in extra:
        batch = metadata.get("batch", "1")
        extra["max_batch"] = int(batch) if batch.isdigit() else 1
    return extra
