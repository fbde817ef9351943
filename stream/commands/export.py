"""``detstream export``: a checkpoint (or the default model) to ONNX, checked against PyTorch;
an ONNX model (a named one, or a file) to an FP16 copy, checked against the original."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detstream.stream.commands.args import add_model_arguments, positive_int

EXAMPLES = """examples:
  detstream export --model default --out default.onnx
  detstream export --model default --imgsz 416 --half --dynamic-batch 8 --out default-fp16.onnx
  detstream export --model runs/train/n320/weights/best.safetensors --out n320.onnx
  detstream export --model yolox-s --half --out yolox_s_fp16.onnx
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
                    "--half and checked against the FP32 file by the FP16 rule.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, names=False,
                        imgsz_help="square input size (default: the model's own)")
    parser.add_argument("--half", action="store_true",
                        help="FP16 weights and input (for TensorRT FP16 engines)")
    parser.add_argument("--dynamic-batch", type=positive_int, default=None, metavar="MAX",
                        help="a dynamic batch dimension up to MAX (default: fixed batch 1)")
    parser.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
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
    writable_dir(args.out.parent)
    source = resolve_model(args.model, weights=args.weights,
                           log=lambda message: print(message, file=sys.stderr))
    if source.is_onnx:
        return _onnx_to_fp16(args, source)
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
    return 0


def _onnx_to_fp16(args: argparse.Namespace, source) -> int:
    """``--model`` is already ONNX: the only export left is its FP16 copy."""
    from detstream.engines.errors import UserInputError
    from detstream.engines.export.fp16 import check_onnx_parity, convert_to_fp16
    from detstream.engines.export.metadata import onnx_precision
    from detstream.engines.export.parity import sample_frames

    if not args.half:
        raise UserInputError(f"--model {args.model} is already ONNX ({source.path}); pass "
                             "--half for an FP16 copy")
    if args.imgsz or args.dynamic_batch:
        raise UserInputError("--imgsz and --dynamic-batch apply to checkpoints; an ONNX model "
                             "keeps its input size and batch")
    if onnx_precision(source.path) == "fp16":
        raise UserInputError(f"--model {args.model} is already FP16 ONNX ({source.path})")
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
