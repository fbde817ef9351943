"""Every bad input answered: each command, each kind of bad input that applies to it.

A case passes when the command exits with code 2, the last line of stderr is one sentence that
names the problem (it contains the offending flag or path), nothing prints a traceback, and no
partial output is left behind (the output path does not exist).

Most cases run the command line in this process (``detstream.stream.cli.main``): a fresh
interpreter per case would import torch each time, seconds apiece on a 2-core machine. A few
representative cases run as real subprocesses, as a user would meet them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from detstream.stream.cli import main
from tests.conftest import REPO, SHARED_DATA

YOLOX = SHARED_DATA / "models" / "yolox_nano" / "yolox_nano.onnx"
BIKES = SHARED_DATA / "videos" / "bikes.mp4"
DEFAULT = REPO / "engines" / "weights" / "default.safetensors"
#: Without TensorRT, `detstream build` answers that first, whatever the model.
TRT = importlib.util.find_spec("tensorrt") is not None


@dataclass(frozen=True)
class Case:
    """One command line and what its error line must name.

    ``args`` and ``names`` may hold ``{b}`` (the folder of bad files). ``outputs`` are paths
    that must not exist afterwards; ``needs`` are shared data files the case reads.
    """

    id: str
    args: tuple[str, ...]
    names: str
    outputs: tuple[str, ...] = ()
    needs: tuple[Path, ...] = field(default=())


def case(id: str, line: str, names: str, outputs: tuple[str, ...] = (),
         needs: tuple[Path, ...] = ()) -> Case:
    return Case(id, tuple(line.split()), names, outputs, needs)


def _half(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _write_bad_files(b: Path) -> None:
    """The folder of bad inputs every case points into."""
    b.mkdir(parents=True, exist_ok=True)
    (b / "file.txt").write_text("a regular file, not a folder\n")
    for suffix in ("mp4", "onnx", "safetensors", "yaml", "txt"):
        (b / f"empty.{suffix}").write_bytes(b"")
        (b / f"text.{suffix}").write_text("just some words, not what the name promises\n")
        (b / f"binary.{suffix}").write_bytes(bytes(range(256)) * 4)
    # A checkpoint whose weights file is text (its sidecar is real), and one cut in half.
    for name in ("textckpt", "halfckpt"):
        shutil.copyfile(DEFAULT.with_suffix(".json"), b / f"{name}.json")
    (b / "textckpt.safetensors").write_text("not safetensors\n")
    _half(DEFAULT, b / "halfckpt.safetensors")
    if YOLOX.is_file():
        _half(YOLOX, b / "half.onnx")
    if BIKES.is_file():
        _half(BIKES, b / "half.mp4")
    # YAML with the wrong layout or types.
    (b / "list.yaml").write_text("- train: images\n- val: images\n")
    _write_dataset(b / "ds")
    (b / "nonames.yaml").write_text(f"path: {b / 'ds'}\ntrain: images/val\nval: images/val\n")
    (b / "nc_many.yaml").write_text(f"path: {b / 'ds'}\ntrain: images/val\nval: images/val\n"
                                    "nc: many\nnames: [circle, triangle, square, star]\n")
    (b / "names_number.yaml").write_text(f"path: {b / 'ds'}\ntrain: images/val\n"
                                         "val: images/val\nnames: 5\n")
    (b / "nosplit.yaml").write_text(f"path: {b / 'ds'}\ntrain: images/nowhere\n"
                                    "val: images/nowhere\nnames: [a, b, c, d]\n")
    (b / "tracker_list.yaml").write_text("- min_hits\n- 3\n")
    (b / "tracker_abc.yaml").write_text("min_hits: abc\n")
    (b / "tracker_unknown.yaml").write_text("track_buffer: \"abc\"\n")
    (b / "tracker_nan.yaml").write_text("lost_seconds: .nan\n")
    (b / "tracker_negative.yaml").write_text("min_hits: -3\n")
    (b / "tracker_score.yaml").write_text("high_score: 7\n")
    (b / "tracker_state.yaml").write_text("state: sideways\n")
    # MOTChallenge files with the wrong columns, a header only, or nothing.
    (b / "mot_columns.txt").write_text("1,2,3\n")
    (b / "mot_header.txt").write_text("frame,id,x,y,w,h,conf,class,visibility\n")
    (b / "mot_blank.txt").write_text("\n\n")
    rows = [f"{f},{i},{10 * i + f},{20},{30},{40},1,1,1\n" for f in range(1, 6) for i in (1, 2)]
    (b / "gt.txt").write_text("".join(rows))
    (b / "pred.txt").write_text("".join(r.replace(",1,1,1\n", ",0.9,-1,-1,-1\n") for r in rows))
    (b / "pred_late.txt").write_text("99,1,10,20,30,40,0.9,-1,-1,-1\n")
    (b / "names_empty.txt").write_text("\n")
    write_outside_data_onnx(b / "models" / "evil.onnx", "../secret.bin")


def write_outside_data_onnx(path: Path, location: str) -> Path:
    """A tiny ONNX model (y = x + w) whose weight ``w`` keeps its 16 bytes in an external file
    at ``location``; when that is relative, the file is written there, so that a reader which
    follows the location really finds bytes to read."""
    import onnx
    from onnx import TensorProto, helper

    path.parent.mkdir(parents=True, exist_ok=True)
    target = Path(location) if os.path.isabs(location) else path.parent / location
    if not os.path.isabs(location):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4],
                         data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y],
                              [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _write_dataset(root: Path) -> None:
    """One 64x64 image with one box: a dataset valid enough that only the flags are wrong."""
    import cv2

    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "val" / "a.jpg"), np.full((64, 64, 3), 90, np.uint8))
    (root / "labels" / "val" / "a.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "data.yaml").write_text("train: images/val\nval: images/val\n"
                                    "names: [circle, triangle, square, star]\n")


SYN = "synthetic://?frames=3&size=160x96"

CASES = [
    # ---------------------------------------------------------------- run
    case("run-source-missing", "run --source {b}/missing.mp4 --save-json {b}/o/r1.jsonl",
         "{b}/missing.mp4", ("{b}/o/r1.jsonl",)),
    case("run-source-empty", "run --source {b}/empty.mp4 --save-json {b}/o/r2.jsonl",
         "{b}/empty.mp4", ("{b}/o/r2.jsonl",)),
    case("run-source-text", "run --source {b}/text.mp4 --save-json {b}/o/r3.jsonl",
         "{b}/text.mp4", ("{b}/o/r3.jsonl",)),
    case("run-source-binary", "run --source {b}/binary.mp4 --save-json {b}/o/r22.jsonl",
         "{b}/binary.mp4", ("{b}/o/r22.jsonl",)),
    case("run-source-half", "run --source {b}/half.mp4 --save-json {b}/o/r25.jsonl",
         "{b}/half.mp4", ("{b}/o/r25.jsonl",), (BIKES,)),
    case("run-model-binary", f"run --source {SYN} --model {{b}}/binary.onnx "
         "--save-json {b}/o/r23.jsonl", "{b}/binary.onnx", ("{b}/o/r23.jsonl",)),
    case("run-model-outside-data", f"run --source {SYN} --model {{b}}/models/evil.onnx "
         "--save-json {b}/o/r24.jsonl", "'../secret.bin', outside the model's folder",
         ("{b}/o/r24.jsonl",)),
    case("run-model-missing", f"run --source {SYN} --model {{b}}/missing.onnx "
         "--save-json {b}/o/r4.jsonl", "{b}/missing.onnx", ("{b}/o/r4.jsonl",)),
    case("run-model-empty", f"run --source {SYN} --model {{b}}/empty.onnx "
         "--save-json {b}/o/r5.jsonl", "{b}/empty.onnx", ("{b}/o/r5.jsonl",)),
    case("run-model-text", f"run --source {SYN} --model {{b}}/text.onnx "
         "--save-json {b}/o/r6.jsonl", "{b}/text.onnx", ("{b}/o/r6.jsonl",)),
    case("run-model-half", f"run --source {SYN} --model {{b}}/half.onnx "
         "--save-json {b}/o/r7.jsonl", "{b}/half.onnx", ("{b}/o/r7.jsonl",), (YOLOX,)),
    case("run-checkpoint-empty", f"run --source {SYN} --model {{b}}/empty.safetensors "
         "--save-json {b}/o/r8.jsonl", "{b}/empty.safetensors", ("{b}/o/r8.jsonl",)),
    case("run-checkpoint-text", f"run --source {SYN} --model {{b}}/textckpt.safetensors "
         "--backend torch --save-json {b}/o/r9.jsonl", "{b}/textckpt.safetensors",
         ("{b}/o/r9.jsonl",)),
    case("run-checkpoint-half", f"run --source {SYN} --model {{b}}/halfckpt.safetensors "
         "--backend torch --save-json {b}/o/r10.jsonl", "{b}/halfckpt.safetensors",
         ("{b}/o/r10.jsonl",)),
    case("run-names-missing", f"run --source {SYN} --model {YOLOX} --names {{b}}/missing.txt "
         "--save-json {b}/o/r11.jsonl", "{b}/missing.txt", ("{b}/o/r11.jsonl",), (YOLOX,)),
    case("run-names-empty", f"run --source {SYN} --model {YOLOX} "
         "--names {b}/names_empty.txt --save-json {b}/o/r12.jsonl", "{b}/names_empty.txt",
         ("{b}/o/r12.jsonl",), (YOLOX,)),
    case("run-names-binary", f"run --source {SYN} --model {YOLOX} "
         "--names {b}/binary.txt --save-json {b}/o/r26.jsonl", "{b}/binary.txt",
         ("{b}/o/r26.jsonl",), (YOLOX,)),
    case("run-tracker-config-list", f"run --source {SYN} --tracker-config "
         "{b}/tracker_list.yaml --save-json {b}/o/r13.jsonl", "{b}/tracker_list.yaml",
         ("{b}/o/r13.jsonl",)),
    case("run-tracker-config-abc", f"run --source {SYN} --tracker-config "
         "{b}/tracker_abc.yaml --save-json {b}/o/r14.jsonl", "min_hits",
         ("{b}/o/r14.jsonl",)),
    case("run-tracker-config-nan", f"run --source {SYN} --tracker-config "
         "{b}/tracker_nan.yaml --save-json {b}/o/r15.jsonl", "lost_seconds",
         ("{b}/o/r15.jsonl",)),
    case("run-tracker-config-missing", f"run --source {SYN} --tracker-config "
         "{b}/missing.yaml --save-json {b}/o/r16.jsonl", "{b}/missing.yaml",
         ("{b}/o/r16.jsonl",)),
    case("run-output-under-file", f"run --source {SYN} --output {{b}}/file.txt/out.mp4",
         "{b}/file.txt", ("{b}/file.txt/out.mp4",)),
    case("run-json-under-proc", f"run --source {SYN} --save-json /proc/detstream/o.jsonl",
         "/proc/detstream", ("/proc/detstream/o.jsonl",)),
    case("run-imgsz-huge", f"run --source {SYN} --imgsz 1000000 --save-json {{b}}/o/r17.jsonl",
         "--imgsz", ("{b}/o/r17.jsonl",)),
    case("run-imgsz-odd", f"run --source {SYN} --imgsz 33 --save-json {{b}}/o/r18.jsonl",
         "--imgsz", ("{b}/o/r18.jsonl",)),
    case("run-conf-nan", f"run --source {SYN} --conf nan", "--conf"),
    case("run-iou-negative", f"run --source {SYN} --iou -1", "--iou"),
    case("run-max-frames-zero", f"run --source {SYN} --max-frames 0", "--max-frames"),
    case("run-detect-every-negative", f"run --source {SYN} --detect-every -1", "--detect-every"),
    case("run-loop-negative", f"run --source {SYN} --loop -7 --save-json {{b}}/o/r19.jsonl",
         "--loop", ("{b}/o/r19.jsonl",)),
    case("run-threads-huge", f"run --source {SYN} --threads 100000 "
         "--save-json {b}/o/r20.jsonl", "--threads", ("{b}/o/r20.jsonl",)),
    case("run-stall-timeout-nan", f"run --source {SYN} --stall-timeout nan", "--stall-timeout"),
    case("run-classes-unknown", f"run --source {SYN} --classes giraffe "
         "--save-json {b}/o/r21.jsonl", "giraffe", ("{b}/o/r21.jsonl",)),
    case("run-output-suffix", f"run --source {SYN} --output {{b}}/o/out.txt", "--output",
         ("{b}/o/out.txt",)),
    # ---------------------------------------------------------------- val
    case("val-data-missing", "val --data {b}/missing.yaml", "{b}/missing.yaml"),
    case("val-data-empty", "val --data {b}/empty.yaml", "{b}/empty.yaml"),
    case("val-data-text", "val --data {b}/text.yaml", "{b}/text.yaml"),
    case("val-data-binary", "val --data {b}/binary.yaml", "{b}/binary.yaml"),
    case("val-data-list", "val --data {b}/list.yaml", "{b}/list.yaml"),
    case("val-data-no-names", "val --data {b}/nonames.yaml", "{b}/nonames.yaml"),
    case("val-data-nc-many", "val --data {b}/nc_many.yaml", "nc"),
    case("val-data-names-number", "val --data {b}/names_number.yaml", "names"),
    case("val-data-split-missing", "val --data {b}/nosplit.yaml", "{b}/ds/images/nowhere"),
    case("val-split-unknown", "val --data {b}/ds/data.yaml --split test", "test"),
    case("val-model-text", "val --data {b}/ds/data.yaml --model {b}/text.onnx",
         "{b}/text.onnx"),
    case("val-batch-zero", "val --data {b}/ds/data.yaml --batch 0", "--batch"),
    case("val-workers-negative", "val --data {b}/ds/data.yaml --workers -3", "--workers"),
    case("val-imgsz-huge", "val --data {b}/ds/data.yaml --imgsz 999968", "--imgsz"),
    case("val-conf-nan", "val --data {b}/ds/data.yaml --conf nan", "--conf"),
    case("val-json-under-file", "val --data {b}/ds/data.yaml --json {b}/file.txt/m.json",
         "{b}/file.txt", ("{b}/file.txt/m.json",)),
    case("val-device-unknown", "val --data {b}/ds/data.yaml --device potato", "potato"),
    # ---------------------------------------------------------------- train
    case("train-data-missing", "train --data {b}/missing.yaml --out {b}/o/t1", "{b}/missing.yaml",
         ("{b}/o/t1",)),
    case("train-data-list", "train --data {b}/list.yaml --out {b}/o/t2", "{b}/list.yaml",
         ("{b}/o/t2",)),
    case("train-data-nc-many", "train --data {b}/nc_many.yaml --out {b}/o/t3", "nc",
         ("{b}/o/t3",)),
    case("train-out-under-file", "train --data {b}/ds/data.yaml --out {b}/file.txt/run",
         "{b}/file.txt", ("{b}/file.txt/run",)),
    case("train-imgsz-huge", "train --data {b}/ds/data.yaml --imgsz 999968 --out {b}/o/t4",
         "--imgsz", ("{b}/o/t4",)),
    case("train-lr-inf", "train --data {b}/ds/data.yaml --lr0 inf --out {b}/o/t5", "--lr0",
         ("{b}/o/t5",)),
    case("train-warmup-inf", "train --data {b}/ds/data.yaml --warmup-epochs inf --out {b}/o/t6",
         "--warmup-epochs", ("{b}/o/t6",)),
    case("train-epochs-zero", "train --data {b}/ds/data.yaml --epochs 0", "--epochs"),
    case("train-batch-huge", "train --data {b}/ds/data.yaml --batch 10000000", "--batch"),
    case("train-workers-huge", "train --data {b}/ds/data.yaml --workers 100000", "--workers"),
    case("train-weights-text", "train --data {b}/ds/data.yaml --weights "
         "{b}/textckpt.safetensors --out {b}/o/t7", "{b}/textckpt.safetensors", ("{b}/o/t7",)),
    case("train-resume-nothing", "train --resume --out {b}/o/t8", "{b}/o/t8", ("{b}/o/t8",)),
    # ---------------------------------------------------------------- export
    case("export-model-missing", "export --model {b}/missing.safetensors --out {b}/o/e1.onnx",
         "{b}/missing.safetensors", ("{b}/o/e1.onnx",)),
    case("export-model-text", "export --model {b}/textckpt.safetensors --out {b}/o/e2.onnx",
         "{b}/textckpt.safetensors", ("{b}/o/e2.onnx",)),
    case("export-model-half", "export --model {b}/halfckpt.safetensors --out {b}/o/e3.onnx",
         "{b}/halfckpt.safetensors", ("{b}/o/e3.onnx",)),
    case("export-onnx-text", "export --model {b}/text.onnx --half --out {b}/o/e4.onnx",
         "{b}/text.onnx", ("{b}/o/e4.onnx",)),
    case("export-out-under-file", "export --out {b}/file.txt/m.onnx", "{b}/file.txt",
         ("{b}/file.txt/m.onnx",)),
    case("export-out-under-proc", "export --out /proc/detstream/m.onnx", "/proc/detstream",
         ("/proc/detstream/m.onnx",)),
    case("export-out-suffix", "export --out {b}/o/m.txt", "--out", ("{b}/o/m.txt",)),
    case("export-imgsz-odd", "export --imgsz 33 --out {b}/o/e5.onnx", "--imgsz",
         ("{b}/o/e5.onnx",)),
    case("export-imgsz-huge", "export --imgsz 999968 --out {b}/o/e6.onnx", "--imgsz",
         ("{b}/o/e6.onnx",)),
    case("export-dynamic-batch-zero", "export --dynamic-batch 0 --out {b}/o/e7.onnx",
         "--dynamic-batch", ("{b}/o/e7.onnx",)),
    # ---------------------------------------------------------------- build
    case("build-model-missing", "build --model {b}/missing.onnx",
         "{b}/missing.onnx" if TRT else "TensorRT is not installed"),
    case("build-model-text", "build --model {b}/text.onnx",
         "{b}/text.onnx" if TRT else "TensorRT is not installed"),
    case("build-batch-zero", "build --batch 0", "--batch"),
    case("build-workspace-nan", "build --workspace nan", "--workspace"),
    # ---------------------------------------------------------------- bench
    case("bench-engine-model-text", "bench engine --model {b}/text.onnx --backend onnxruntime",
         "{b}/text.onnx"),
    case("bench-engine-batch-zero", "bench engine --batch 0", "--batch"),
    case("bench-engine-seconds-negative", "bench engine --backend onnxruntime --seconds -1",
         "--seconds"),
    case("bench-engine-threads-negative", "bench engine --backend onnxruntime --threads -2",
         "--threads"),
    case("bench-engine-imgsz-huge", "bench engine --backend onnxruntime --imgsz 999968",
         "--imgsz"),
    case("bench-engine-backend-unknown", "bench engine --backend warp-drive", "warp-drive"),
    case("bench-engine-json-under-file", "bench engine --backend onnxruntime --seconds 0.1 "
         "--json {b}/file.txt/b.json", "{b}/file.txt", ("{b}/file.txt/b.json",)),
    case("bench-pipeline-source-missing", "bench pipeline --source {b}/missing.mp4",
         "{b}/missing.mp4"),
    case("bench-pipeline-frames-zero", f"bench pipeline --source {SYN} --frames 0", "--frames"),
    case("bench-pipeline-imgsz-negative", f"bench pipeline --source {SYN} --imgsz -32",
         "--imgsz"),
    case("bench-live-seconds-nan", "bench live --seconds nan", "--seconds"),
    case("bench-live-seconds-negative", "bench live --seconds -5", "--seconds"),
    case("bench-tracker-dets-missing", "bench tracker --dets {b}/missing.txt", "{b}/missing.txt"),
    case("bench-tracker-dets-empty", "bench tracker --dets {b}/empty.txt", "{b}/empty.txt"),
    case("bench-tracker-dets-binary", "bench tracker --dets {b}/binary.txt", "{b}/binary.txt"),
    case("bench-tracker-dets-columns", "bench tracker --dets {b}/mot_columns.txt",
         "{b}/mot_columns.txt"),
    case("bench-tracker-fps-zero", "bench tracker --dets {b}/pred.txt --fps 0", "--fps"),
    case("bench-tracker-seconds-nan", "bench tracker --dets {b}/pred.txt --seconds nan",
         "--seconds"),
    case("bench-tracker-size-bad", "bench tracker --dets {b}/pred.txt --seconds 0.05 "
         "--size huge", "'huge'"),
    case("bench-tracker-unknown", "bench tracker --dets {b}/pred.txt --trackers sort9",
         "sort9"),
    case("bench-mot-scenes-zero", "bench mot --scenes 0", "--scenes"),
    case("bench-mot-frames-negative", "bench mot --frames -3", "--frames"),
    case("bench-mot-size-bad", "bench mot --size 640", "'640'"),
    case("bench-mot-fps-nan", "bench mot --fps nan", "--fps"),
    case("bench-mot-conf-big", "bench mot --conf 3", "--conf"),
    case("bench-mot-model-missing", "bench mot --model {b}/missing.onnx --scenes 1 --frames 2",
         "{b}/missing.onnx"),
    case("bench-soak-minutes-zero", "bench soak --minutes 0", "--minutes"),
    case("bench-soak-json-under-file", "bench soak --minutes 1 --json {b}/file.txt/s.json",
         "{b}/file.txt", ("{b}/file.txt/s.json",)),
    case("bench-demo-seconds-zero", "bench demo --seconds 0", "--seconds"),
    case("bench-demo-upload-missing", "bench demo --upload {b}/missing.mp4", "{b}/missing.mp4"),
    # ---------------------------------------------------------------- track
    case("track-dets-missing", "track --dets {b}/missing.txt --out {b}/o/k1.txt",
         "{b}/missing.txt", ("{b}/o/k1.txt",)),
    case("track-dets-empty", "track --dets {b}/empty.txt --out {b}/o/k2.txt",
         "{b}/empty.txt", ("{b}/o/k2.txt",)),
    case("track-dets-text", "track --dets {b}/text.txt --out {b}/o/k3.txt",
         "{b}/text.txt", ("{b}/o/k3.txt",)),
    case("track-dets-binary", "track --dets {b}/binary.txt --out {b}/o/k13.txt",
         "{b}/binary.txt", ("{b}/o/k13.txt",)),
    case("track-dets-columns", "track --dets {b}/mot_columns.txt --out {b}/o/k4.txt",
         "{b}/mot_columns.txt", ("{b}/o/k4.txt",)),
    case("track-out-under-file", "track --dets {b}/pred.txt --out {b}/file.txt/k.txt",
         "{b}/file.txt", ("{b}/file.txt/k.txt",)),
    case("track-out-under-proc", "track --dets {b}/pred.txt --out /proc/detstream/k.txt",
         "/proc/detstream", ("/proc/detstream/k.txt",)),
    case("track-config-list", "track --dets {b}/pred.txt --out {b}/o/k5.txt "
         "--config {b}/tracker_list.yaml", "{b}/tracker_list.yaml", ("{b}/o/k5.txt",)),
    case("track-config-unknown", "track --dets {b}/pred.txt --out {b}/o/k6.txt "
         "--config {b}/tracker_unknown.yaml", "track_buffer", ("{b}/o/k6.txt",)),
    case("track-config-negative", "track --dets {b}/pred.txt --out {b}/o/k7.txt "
         "--config {b}/tracker_negative.yaml", "min_hits", ("{b}/o/k7.txt",)),
    case("track-config-score", "track --dets {b}/pred.txt --out {b}/o/k8.txt "
         "--config {b}/tracker_score.yaml", "high_score", ("{b}/o/k8.txt",)),
    case("track-config-state", "track --dets {b}/pred.txt --out {b}/o/k9.txt "
         "--config {b}/tracker_state.yaml", "sideways", ("{b}/o/k9.txt",)),
    case("track-config-text", "track --dets {b}/pred.txt --out {b}/o/k10.txt "
         "--config {b}/text.yaml", "{b}/text.yaml", ("{b}/o/k10.txt",)),
    case("track-tracker-unknown", "track --dets {b}/pred.txt --out {b}/o/k11.txt "
         "--tracker sort9", "sort9", ("{b}/o/k11.txt",)),
    case("track-fps-nan", "track --dets {b}/pred.txt --out {b}/o/k12.txt --fps nan", "--fps"),
    # ---------------------------------------------------------------- eval-mot
    case("eval-mot-gt-missing", "eval-mot --gt {b}/missing.txt --pred {b}/pred.txt",
         "{b}/missing.txt"),
    case("eval-mot-gt-empty", "eval-mot --gt {b}/empty.txt --pred {b}/pred.txt",
         "{b}/empty.txt"),
    case("eval-mot-gt-blank", "eval-mot --gt {b}/mot_blank.txt --pred {b}/pred.txt",
         "{b}/mot_blank.txt"),
    case("eval-mot-gt-header", "eval-mot --gt {b}/mot_header.txt --pred {b}/pred.txt",
         "{b}/mot_header.txt"),
    case("eval-mot-gt-columns", "eval-mot --gt {b}/mot_columns.txt --pred {b}/pred.txt",
         "{b}/mot_columns.txt"),
    case("eval-mot-gt-text", "eval-mot --gt {b}/text.txt --pred {b}/pred.txt", "{b}/text.txt"),
    case("eval-mot-pred-missing", "eval-mot --gt {b}/gt.txt --pred {b}/missing.txt",
         "{b}/missing.txt"),
    case("eval-mot-pred-columns", "eval-mot --gt {b}/gt.txt --pred {b}/mot_columns.txt",
         "{b}/mot_columns.txt"),
    case("eval-mot-pred-past-the-end", "eval-mot --gt {b}/gt.txt --pred {b}/pred_late.txt",
         "{b}/pred_late.txt"),
    case("eval-mot-gt-folder-empty", "eval-mot --gt {b}/ds --pred {b}/ds", "{b}/ds"),
    case("eval-mot-json-under-file", "eval-mot --gt {b}/gt.txt --pred {b}/pred.txt "
         "--json {b}/file.txt/s.json", "{b}/file.txt", ("{b}/file.txt/s.json",)),
    # ---------------------------------------------------------------- synth
    case("synth-video-under-file", "synth video {b}/file.txt/v", "{b}/file.txt",
         ("{b}/file.txt/v",)),
    case("synth-video-under-proc", "synth video /proc/detstream/v", "/proc/detstream",
         ("/proc/detstream/v",)),
    case("synth-video-size-huge", "synth video {b}/o/v1 --size 100000x100000", "--size",
         ("{b}/o/v1",)),
    case("synth-video-fps-inf", "synth video {b}/o/v2 --fps inf", "--fps", ("{b}/o/v2",)),
    case("synth-video-frames-huge", "synth video {b}/o/v3 --frames 100000000000", "--frames",
         ("{b}/o/v3",)),
    case("synth-video-objects-huge", "synth video {b}/o/v4 --objects 100000000", "--objects",
         ("{b}/o/v4",)),
    case("synth-dataset-imgsz-huge", "synth dataset {b}/o/d1 --train 1 --val 1 --imgsz 1000000",
         "--imgsz", ("{b}/o/d1",)),
    case("synth-dataset-under-file", "synth dataset {b}/file.txt/d --train 1 --val 1",
         "{b}/file.txt", ("{b}/file.txt/d",)),
    case("synth-dataset-train-huge", "synth dataset {b}/o/d2 --train 100000000000 --val 1",
         "--train", ("{b}/o/d2",)),
    case("synth-dataset-workers-huge", "synth dataset {b}/o/d3 --train 1 --val 1 "
         "--workers 100000", "--workers", ("{b}/o/d3",)),
    # ---------------------------------------------------------------- models, doctor, demo
    case("models-fetch-unknown", "models --fetch giraffe-net", "giraffe-net"),
    case("models-family-imgsz-huge", "models --family --imgsz 1000000", "--imgsz"),
    case("models-classes-huge", "models --family --classes 100000000", "--classes"),
    case("doctor-unknown-flag", "doctor --fix-everything", "--fix-everything"),
    case("demo-model-missing", "demo --model {b}/missing.onnx", "{b}/missing.onnx"),
    case("demo-model-text", "demo --model {b}/text.onnx", "{b}/text.onnx"),
    case("demo-model-outside-data", "demo --model {b}/models/evil.onnx", "outside the model"),
    case("demo-allow-dir-file", "demo --allow-dir {b}/file.txt", "{b}/file.txt"),
    case("demo-port-huge", "demo --port 70000", "--port"),
]


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory) -> Path:
    b = tmp_path_factory.mktemp("bad")
    _write_bad_files(b)
    return b


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    """A cache of its own and a working folder of its own (run folders land there)."""
    cache = tmp_path_factory.mktemp("cache")
    work = tmp_path_factory.mktemp("work")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DETSTREAM_CACHE", str(cache))
        patch.chdir(work)
        yield work


def _fill(text: str, b: Path) -> str:
    return text.replace("{b}", str(b))


def _run_in_process(args: list[str], capfd) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capfd.readouterr()
    return code, out, err


def check_answer(code: int, out: str, err: str, names: str, outputs: list[str]) -> None:
    """Exit 2, one last stderr line naming the problem, no traceback, no partial output."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in out + err, err
    assert lines, "nothing on stderr"
    last = lines[-1]
    assert last.startswith("detstream"), last
    assert names in last, f"{names!r} not in {last!r}"
    assert "error" in last, last
    for output in outputs:
        assert not Path(output).exists(), f"{output} was left behind"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_answered_in_one_line(c: Case, bad_dir: Path, isolated, capfd):
    for need in c.needs:
        if not need.exists():
            pytest.skip(f"shared data {need} is absent (tests read it from ../shared/data)")
    args = [_fill(a, bad_dir) for a in c.args]
    code, out, err = _run_in_process(args, capfd)
    check_answer(code, out, err, _fill(c.names, bad_dir), [_fill(o, bad_dir) for o in c.outputs])


REAL = ("run-source-text", "val-data-no-names", "track-config-unknown", "eval-mot-gt-empty",
        "export-out-under-file", "synth-video-size-huge")


@pytest.mark.parametrize("c", [c for c in CASES if c.id in REAL], ids=lambda c: c.id)
def test_bad_input_is_answered_in_a_real_process(c: Case, bad_dir: Path, tmp_path):
    """As a user meets it: a fresh interpreter, its own stdout and stderr."""
    args = [_fill(a, bad_dir) for a in c.args]
    env = {**os.environ, "DETSTREAM_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "detstream", *args], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path, env=env)
    check_answer(result.returncode, result.stdout, result.stderr, _fill(c.names, bad_dir),
                 [_fill(o, bad_dir) for o in c.outputs])


def test_unwritable_folder_is_named(bad_dir: Path, isolated, capfd):
    """A folder nobody may write to: without write permission, or, as root (whom permissions
    do not stop), a read-only tmpfs mounted there."""
    locked = bad_dir / "locked"
    locked.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs",
                                  str(locked)], capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"as root, a read-only folder needs a mount: {mounted.stderr.strip()}")
    else:
        locked.chmod(0o500)
    try:
        for args, output in (
                (["track", "--dets", str(bad_dir / "pred.txt"), "--out", str(locked / "k.txt")],
                 locked / "k.txt"),
                (["synth", "video", str(locked / "v"), "--frames", "2"], locked / "v"),
                (["eval-mot", "--gt", str(bad_dir / "gt.txt"), "--pred", str(bad_dir / "pred.txt"),
                  "--json", str(locked / "s.json")], locked / "s.json")):
            code, out, err = _run_in_process(args, capfd)
            check_answer(code, out, err, str(locked), [str(output)])
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(locked)], check=False)
        else:
            locked.chmod(0o700)


# ---------------------------------------------------------------- eval-mot: empty inputs


def test_eval_mot_refuses_empty_ground_truth_but_scores_empty_tracks(bad_dir, isolated,
                                                                      capfd):
    """No ground truth measures nothing (it used to print all-zero scores and exit 0); no
    tracks is a real result: every target missed."""
    for gt in ("empty.txt", "mot_blank.txt"):
        code, out, err = _run_in_process(["eval-mot", "--gt", str(bad_dir / gt), "--pred",
                                          str(bad_dir / "pred.txt")], capfd)
        check_answer(code, out, err, str(bad_dir / gt), [])
        assert "holds no rows" in err
    code, out, err = _run_in_process(["eval-mot", "--gt", str(bad_dir / "gt.txt"), "--pred",
                                      str(bad_dir / "empty.txt"), "--json",
                                      str(bad_dir / "o" / "none.json")], capfd)
    assert code == 0, err
    import json

    scores = json.loads((bad_dir / "o" / "none.json").read_text())
    assert (scores["FN"], scores["FP"], scores["MOTA"]) == (10, 0, 0.0)  # 10 rows in gt.txt


# ---------------------------------------------------------------- data.yaml and Ultralytics


def test_synthetic_dataset_yaml_reads_the_same_in_detstream_and_ultralytics(tmp_path,
                                                                          monkeypatch):
    """The file leaves ``path`` out: Ultralytics' check_det_dataset then takes the yaml's own
    folder as the root (``path: .`` was resolved against the working directory instead), and
    our loader reads splits from the yaml's folder too. Old files with ``path: .`` still load,
    relative to their own folder."""
    import yaml

    from detstream.engines.data.synthetic.dataset import DatasetSpec, write_dataset
    from detstream.engines.data.yolo import load_data_yaml

    write_dataset(tmp_path / "d", DatasetSpec(train=2, val=2, imgsz=160, seed=1,
                                              images_per_scene=2), workers=1)
    data_yaml = tmp_path / "d" / "data.yaml"
    doc = yaml.safe_load(data_yaml.read_text())
    assert "path" not in doc and doc["train"] == "images/train" and doc["nc"] == 4
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the yaml, never to the working directory
    for text in (data_yaml.read_text(), "path: .\n" + data_yaml.read_text()):
        data_yaml.write_text(text)
        config = load_data_yaml(data_yaml)
        assert config.root == data_yaml.parent.resolve()
        assert len(config.images("train")) == 2 and len(config.images("val")) == 2
    # Ultralytics' rule (ultralytics/data/utils.py, check_det_dataset): root = path or the
    # yaml's folder; a relative root that exists is used as it is, i.e. from the cwd.
    ultralytics_root = Path(doc.get("path") or data_yaml.parent)
    assert ultralytics_root.resolve() == config.root


# ---------------------------------------------------------------- untrusted model files


def test_onnx_external_data_outside_its_folder_is_refused_everywhere(tmp_path, isolated,
                                                                     capfd):
    """A weight whose bytes live at ``../secret.bin``, at an absolute path or behind a link
    leading out of the folder is refused with one line before any reader follows it: the
    CLI, inspection, open_backend, the onnxruntime backend itself and the FP16 export."""
    from detstream.engines.errors import UserInputError
    from detstream.engines.export.fp16 import convert_to_fp16
    from detstream.engines.export.metadata import load_onnx
    from detstream.engines.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from detstream.engines.runtime.select import open_backend
    from detstream.engines.spec import ModelSpec
    from detstream.engines.zoo.onnx_import import inspect_onnx

    models = tmp_path / "models"
    secret = tmp_path / "secret.bin"
    (models / "link.bin").parent.mkdir(parents=True)
    (models / "link.bin").symlink_to(secret)
    evil = {"../secret.bin": write_outside_data_onnx(models / "up.onnx", "../secret.bin"),
            str(secret): write_outside_data_onnx(models / "abs.onnx", str(secret)),
            "link.bin": write_outside_data_onnx(models / "link.onnx", "link.bin")}
    assert secret.is_file()
    spec = ModelSpec(name="evil", class_names=("a",))
    calls = (inspect_onnx, lambda path: open_backend(str(path), "onnxruntime"),
             lambda path: OnnxRuntimeBackend(path, spec), lambda path: load_onnx(path, True),
             lambda path: convert_to_fp16(path, tmp_path / "half.onnx"))
    for location, path in evil.items():
        for call in calls:
            with pytest.raises(UserInputError, match="outside the model's folder") as info:
                call(path)
            assert repr(location) in str(info.value) and str(path) in str(info.value)
        code, out, err = _run_in_process(["run", "--source", SYN, "--model", str(path),
                                          "--save-json", str(tmp_path / "o.jsonl")], capfd)
        check_answer(code, out, err, "outside the model's folder", [str(tmp_path / "o.jsonl")])
    assert not (tmp_path / "half.onnx").exists()
    # Data beside the model is fine, and is what load_weights reads.
    good = write_outside_data_onnx(models / "good.onnx", "weights/w.bin")
    weight = load_onnx(good, load_weights=True).graph.initializer[0]
    assert np.frombuffer(weight.raw_data, np.float32).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_yaml_files_are_read_with_the_safe_loader(tmp_path, isolated, capfd):
    """A YAML tag that would run a command is refused as an error line, and runs nothing."""
    marker = tmp_path / "ran"
    payload = f"!!python/object/apply:os.system ['touch {marker}']\n"
    (tmp_path / "tracker.yaml").write_text(f"min_hits: {payload}")
    (tmp_path / "data.yaml").write_text(f"names: {payload}")
    (tmp_path / "names.yaml").write_text(payload)
    for args, names in (
            (["track", "--dets", str(tmp_path / "d.txt"), "--out", str(tmp_path / "t.txt"),
              "--config", str(tmp_path / "tracker.yaml")], "tracker.yaml"),
            (["val", "--data", str(tmp_path / "data.yaml")], "data.yaml"),
            (["run", "--source", SYN, "--model", str(YOLOX), "--names",
              str(tmp_path / "names.yaml")], "names.yaml")):
        if str(YOLOX) in args and not YOLOX.is_file():
            continue
        (tmp_path / "d.txt").write_text("1,-1,10,10,20,20,0.9,-1,-1,-1\n")
        code, out, err = _run_in_process(args, capfd)
        check_answer(code, out, err, names, [])
    assert not marker.exists()


def test_no_unsafe_loader_in_the_source():
    """Every YAML read is safe_load and every torch.load is weights_only=True, and nothing
    unpickles (checkpoints are safetensors + JSON)."""
    import re

    unsafe = re.compile(r"yaml\.(load|unsafe_load|full_load)\(|yaml\.(Unsafe|Full)?Loader\b|"
                        r"pickle\.loads?\(|allow_pickle=True")
    torch_load = re.compile(r"torch\.load\(([^)]*)\)", re.S)
    files = [f for p in ("engines", "stream", "demo") for f in sorted((REPO / p).rglob("*.py"))]
    assert len(files) > 50
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert not unsafe.search(text), f"{file}: {unsafe.search(text).group(0)}"
        for call in torch_load.finditer(text):
            assert "weights_only=True" in call.group(1), f"{file}: {call.group(0)}"


def test_pickled_code_in_weights_is_refused_not_run(tmp_path):
    """A torchvision weights file that is a pickle with a payload: torch.load(weights_only=True)
    refuses it and the payload never runs."""
    import pickle

    import torch  # noqa: F401  (the weights loader's own import)

    from detstream.engines.errors import UserInputError
    from detstream.engines.zoo.resolve import resolve_model

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "ssdlite.pth"
    evil.write_bytes(pickle.dumps({"weight": Payload()}, protocol=2))
    with pytest.raises(UserInputError, match="is not a PyTorch weights file"):
        resolve_model("ssdlite320", weights=evil)
    assert not marker.exists()
