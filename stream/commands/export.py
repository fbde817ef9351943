"""``detstream export``: a checkpoint (or the default model) to ONNX, checked against PyTorch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stream.commands.args import positive_int

EXAMPLES = """examples:
  detstream export --model default --out default.onnx
  detstream export --model default --imgsz 416 --half --dynamic-batch 8 --out default-fp16.onnx
  detstream export --model runs/train/n320/weights/best.safetensors --out n320.onnx
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="export a model to ONNX and check it against PyTorch",
        description="Write ONNX (opset 17) with the model's contract in its metadata (class "
                    "names, input size, output layout, colour order, scale, mean/std, letterbox "
                    "alignment, pad value). The file is then run in onnxruntime on rendered "
                    "frames and compared with PyTorch FP32: FP32 raw outputs within 1e-3; FP16 "
                    "boxes after NMS at IoU >= 0.98 with scores within 0.02. A file that fails "
                    "is not kept.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default",
                        help="'default' or a checkpoint .safetensors (default: default)")
    parser.add_argument("--imgsz", type=positive_int, default=None,
                        help="square input size (default: the model's own)")
    parser.add_argument("--half", action="store_true",
                        help="FP16 weights and input (for TensorRT FP16 engines)")
    parser.add_argument("--dynamic-batch", type=positive_int, default=None, metavar="MAX",
                        help="a dynamic batch dimension up to MAX (default: fixed batch 1)")
    parser.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engines.errors import UserInputError
    from engines.export.onnx import export_onnx
    from engines.export.parity import check_parity, sample_frames
    from engines.paths import writable_dir
    from engines.zoo import load_model

    if args.out.suffix != ".onnx":
        raise UserInputError(f"--out {args.out}: the file name must end in .onnx")
    if str(args.model).endswith(".onnx"):
        raise UserInputError(f"--model {args.model} is already ONNX; export takes 'default' or "
                             "a checkpoint")
    writable_dir(args.out.parent)
    model, spec, _ = load_model(args.model)
    path, spec = export_onnx(model, spec, args.out, args.imgsz, half=args.half,
                             max_batch=args.dynamic_batch or 1)
    precision = "fp16" if args.half else "fp32"
    report = check_parity(path, model, spec, sample_frames(), precision)
    print(report.summary())
    if not report.passed:
        path.unlink(missing_ok=True)
        print(f"{args.prog}: error: the exported model does not match PyTorch; {path} was "
              "removed (report the model and this output)", file=sys.stderr)
        return 2
    h, w = spec.input_size
    batch = f"dynamic batch 1-{args.dynamic_batch}" if args.dynamic_batch else "batch 1"
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {precision}, {w}x{h}, {batch}, "
          f"{spec.num_classes} classes, layout {spec.layout})")
    return 0
