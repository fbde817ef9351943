"""``detstream models``: the detector family with sizes and costs."""

from __future__ import annotations

import argparse

from stream.commands.args import positive_int

EXAMPLES = """examples:
  detstream models
  detstream models --imgsz 640 --classes 80
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "models", help="list the detector family: parameters and GFLOPs",
        description="List the model sizes written here (n, s, m) with parameter counts and "
                    "GFLOPs at an input size, and the embedded default model.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imgsz", type=positive_int, default=320,
                        help="square input size for GFLOPs (default 320)")
    parser.add_argument("--classes", type=positive_int, default=80,
                        help="number of classes of the head (default 80)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engines.errors import UserInputError
    from engines.models import SCALES, Detector, count_gflops, count_parameters
    from engines.zoo import DEFAULT_WEIGHTS, load_model

    if args.imgsz % 32:
        raise UserInputError(f"--imgsz {args.imgsz} must be a multiple of 32")
    print(f"{'model':<14}{'classes':>8}{'params':>10}{'GFLOPs':>9}  at {args.imgsz}x{args.imgsz}")
    for size in SCALES:
        model = Detector(size, args.classes)
        print(f"{'detstream-' + size:<14}{args.classes:>8}{count_parameters(model) / 1e6:>9.2f}M"
              f"{count_gflops(model, args.imgsz):>9.2f}")
    if DEFAULT_WEIGHTS.is_file():
        model, spec, sidecar = load_model("default")
        metrics = sidecar.get("metrics", {})
        print(f"\ndefault: {spec.name}, {spec.num_classes} classes ({', '.join(spec.class_names)})"
              f", input {spec.input_size[1]}x{spec.input_size[0]}, "
              f"{count_parameters(model) / 1e6:.2f}M params, "
              f"mAP50 {metrics.get('map50', float('nan')):.3f} "
              f"mAP50-95 {metrics.get('map50_95', float('nan')):.3f} (synthetic val)")
    return 0
