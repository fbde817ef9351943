"""``detstream export``: a checkpoint (or the default model) to ONNX, checked against PyTorch;
an ONNX model (a named one, or a file) to an FP16 copy, checked against the original; with
``--int8``, also an INT8 copy, kept only when its COCO accuracy stays within a tolerance of
FP32's."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detstream.stream.commands.args import add_model_arguments, bounded_int, fraction, positive_int

EXAMPLES = """examples:
  detstream export --model default --out default.onnx
  detstream export --model default --imgsz 416 --half --dynamic-batch 8 --out default-fp16.onnx
  detstream export --model runs/train/n320/weights/best.safetensors --out n320.onnx
  detstream export --model yolox-s --half --out yolox_s_fp16.onnx
  detstream export --model default --int8 --out default.onnx
  detstream export --model yolox_nano.onnx --int8 --calibration coco128/data.yaml --out nano.onnx
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="export a model to ONNX and check it against PyTorch",
        description="Write ONNX (opset 17) with the model's contract in its metadata (class "
                    "names, input size, output layout, colour order, scale, mean/std, letterbox "
                    "alignment, pad value). The file is then run in onnxruntime on rendered "
                    "frames and compared with PyTorch FP32: FP32 raw outputs within 1e-3; FP16 "
                    "boxes after NMS at IoU >= 0.98 with scores within 0.02. A file that fails "
                    "is not kept. An ONNX model (yolox-nano, a file) is converted to FP16 with "
                    "--half and checked against the FP32 file by the FP16 rule. With --int8 "
                    "an INT8 copy (NAME.int8.onnx beside the FP32 file) is made by ONNX "
                    "Runtime's static quantization, calibrated on --calibration frames through "
                    "the model's own preprocessing, and scored against FP32 (COCO mAP50-95) "
                    "on held-out labelled images: it is written only when it loses at most "
                    "--int8-tolerance, else the command fails and nothing is written. "
                    "detstream run then uses it on the CPU where it measures faster.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, names=False,
                        imgsz_help="square input size (default: the model's own)")
    parser.add_argument("--half", action="store_true",
                        help="FP16 weights and input (for TensorRT FP16 engines)")
    parser.add_argument("--dynamic-batch", type=positive_int, default=None, metavar="MAX",
                        help="a dynamic batch dimension up to MAX (default: fixed batch 1)")
    parser.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--int8", action="store_true",
                        help="also write an INT8 copy, NAME.int8.onnx, if it passes its "
                             "accuracy check against FP32 (onnxruntime on the CPU)")
    parser.add_argument("--calibration", default=None, metavar="SOURCE",
                        help="--int8: frames to calibrate on: a YOLO data.yaml, a folder of "
                             "images, a video file or a synthetic:// URI (default: the "
                             "synthetic world, for models of its classes; other models need "
                             "labelled images, which also give the held-out check images)")
    parser.add_argument("--calibration-frames", type=bounded_int(1, 1000), default=None,
                        metavar="N", help="--int8: calibration frames (default 64)")
    parser.add_argument("--check-images", type=bounded_int(1, 2000), default=None,
                        metavar="N", help="--int8: held-out images the accuracy check scores "
                                          "(default 128, fewer when the data has fewer)")
    parser.add_argument("--int8-tolerance", type=fraction, default=None, metavar="MAP",
                        help="--int8: the largest mAP50-95 loss against FP32 that is kept "
                             "(default 0.01)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from detstream.engines.errors import UserInputError
    from detstream.engines.export.onnx import export_onnx
    from detstream.engines.export.parity import check_parity, sample_frames
    from detstream.engines.models.checkpoint import load_checkpoint
    from detstream.engines.paths import writable_dir
    from detstream.engines.zoo.resolve import resolve_model

    if args.out.suffix != ".onnx":
        raise UserInputError(f"--out {args.out}: the file name must end in .onnx")
    _check_int8_options(args)
    writable_dir(args.out.parent)
    source = resolve_model(args.model, weights=args.weights,
                           log=lambda message: print(message, file=sys.stderr))
    calibration = _calibration(args, source) if args.int8 else None
    if source.is_onnx:
        return _onnx_to_int8(args, source, calibration) if args.int8 else _onnx_to_fp16(args,
                                                                                      source)
    model, spec, _ = load_checkpoint(source.path)
    path, spec = export_onnx(model, spec, args.out, args.imgsz, half=args.half,
                             max_batch=args.dynamic_batch or 1)
    precision = "fp16" if args.half else "fp32"
    report = check_parity(path, model, spec, sample_frames(), precision)
    if not _kept(report, path, "the exported model does not match PyTorch", args.prog):
        return 2
    h, w = spec.input_size
    batch = f"dynamic batch 1-{args.dynamic_batch}" if args.dynamic_batch else "batch 1"
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {precision}, {w}x{h}, {batch}, "
          f"{spec.num_classes} classes, layout {spec.layout})")
    if calibration is None:
        return 0
    return _int8(args, path, spec, calibration, checkpoint=source.path)


def _onnx_to_fp16(args: argparse.Namespace, source) -> int:
    """``--model`` is already ONNX: the only export left is its FP16 copy."""
    from detstream.engines.errors import UserInputError
    from detstream.engines.export.fp16 import check_onnx_parity, convert_to_fp16
    from detstream.engines.export.metadata import int8_record, onnx_precision
    from detstream.engines.export.parity import sample_frames

    if not args.half:
        raise UserInputError(f"--model {args.model} is already ONNX ({source.path}); pass "
                             "--half for an FP16 copy")
    if args.imgsz or args.dynamic_batch:
        raise UserInputError("--imgsz and --dynamic-batch apply to checkpoints; an ONNX model "
                             "keeps its input size and batch")
    if onnx_precision(source.path) == "fp16":
        raise UserInputError(f"--model {args.model} is already FP16 ONNX ({source.path})")
    if int8_record(source.path) is not None:
        raise UserInputError(f"--model {args.model} is an INT8 file; pass the FP32 file it was "
                             "made from for an FP16 copy")
    path = convert_to_fp16(source.path, args.out)
    report = check_onnx_parity(source.path, path, source.spec, sample_frames())
    if not _kept(report, path, "the FP16 copy does not match the FP32 model", args.prog):
        return 2
    h, w = source.spec.input_size
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, fp16, {w}x{h}, "
          f"{source.spec.num_classes} classes, layout {source.spec.layout})")
    return 0


def _kept(report, path: Path, problem: str, prog: str) -> bool:
    """Print the parity report; a file that failed it is removed, with one error line."""
    print(report.summary())
    if not report.passed:
        path.unlink(missing_ok=True)
        print(f"{prog}: error: {problem}; {path} was removed (report the model and this "
              "output)", file=sys.stderr)
    return report.passed


INT8_OPTIONS = ("calibration", "calibration_frames", "check_images", "int8_tolerance")


def _check_int8_options(args: argparse.Namespace) -> None:
    """The INT8 options need --int8, and an INT8 export is not an FP16 one."""
    from detstream.engines.errors import UserInputError

    given = [f"--{name.replace('_', '-')}" for name in INT8_OPTIONS
             if getattr(args, name) is not None]
    if given and not args.int8:
        raise UserInputError(f"{', '.join(given)}: only for INT8 exports; add --int8")
    if args.int8 and args.half:
        raise UserInputError("--int8 makes an INT8 copy of the FP32 export; drop --half")


def _calibration(args: argparse.Namespace, source):
    """The calibration frames and check images, gathered before anything is written (a model
    that needs real images is told so at once)."""
    from dataclasses import replace

    from detstream.engines.export.calibration import (
        DEFAULT_CHECK_IMAGES,
        DEFAULT_FRAMES,
        calibration_data,
    )
    from detstream.engines.spec import check_input_size

    spec = source.spec
    if not source.is_onnx and args.imgsz:
        size = check_input_size(int(args.imgsz), spec.stride)
        spec = replace(spec, input_size=(size, size))
    return calibration_data(args.calibration, spec, args.model,
                            args.calibration_frames or DEFAULT_FRAMES,
                            args.check_images or DEFAULT_CHECK_IMAGES)


def _onnx_to_int8(args: argparse.Namespace, source, calibration) -> int:
    """``--model`` is an FP32 ONNX file: it is copied to ``--out`` (unless it is that file)
    and its INT8 copy goes beside it."""
    import shutil

    from detstream.engines.cache import atomic_output
    from detstream.engines.errors import UserInputError
    from detstream.engines.export.metadata import int8_record, onnx_precision

    if args.imgsz or args.dynamic_batch:
        raise UserInputError("--imgsz and --dynamic-batch apply to checkpoints; an ONNX model "
                             "keeps its input size and batch")
    if onnx_precision(source.path) != "fp32" or int8_record(source.path) is not None:
        raise UserInputError(f"--model {args.model} is not an FP32 ONNX file; --int8 "
                             "quantizes the FP32 model")
    if args.out.resolve() != source.path.resolve():
        with atomic_output(args.out) as tmp:
            shutil.copyfile(source.path, tmp)
        print(f"wrote {args.out} (the FP32 model, copied from {source.path})")
    return _int8(args, args.out, source.spec, calibration)


def _int8(args: argparse.Namespace, fp32_path: Path, spec, calibration,
          checkpoint: Path | None = None) -> int:
    """Quantize, check and keep (or refuse) the INT8 copy of ``fp32_path`` (exported from
    ``checkpoint``, when it was)."""
    from detstream.engines.export.int8 import DEFAULT_TOLERANCE, export_int8
    from detstream.engines.export.metadata import checkpoint_int8_path, int8_path

    tolerance = args.int8_tolerance if args.int8_tolerance is not None else DEFAULT_TOLERANCE
    report = export_int8(fp32_path, spec, calibration, tolerance,
                         log=lambda message: print(message, file=sys.stderr),
                         checkpoint=checkpoint)
    print(report.summary())
    out = int8_path(fp32_path)
    if not report.passed:
        print(f"{args.prog}: error: {report.failure()}; {out} was not written (the FP32 "
              f"export {fp32_path} is kept)", file=sys.stderr)
        return 2
    h, w = spec.input_size
    runs = f"--model {fp32_path}"
    if checkpoint is not None and out.resolve() == checkpoint_int8_path(checkpoint).resolve():
        runs += f" or --model {checkpoint}"
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, int8, {w}x{h}; detstream run "
          f"{runs} runs it where it measures faster than FP32)")
    return 0
