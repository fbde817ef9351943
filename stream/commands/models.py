"""``detstream models``: the models ``--model`` can name, and the detector family."""

from __future__ import annotations

import argparse
import sys

from detstream.stream.commands.args import bounded_int, positive_int

EXAMPLES = """examples:
  detstream models
  detstream models --fetch yolox-nano yolox-s
  DETSTREAM_MODEL_MIRROR=http://models.local/detstream detstream models --fetch yolox-nano
  detstream models --family --imgsz 640
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "models", help="list the named models (licence, size, COCO mAP, cached) or fetch them",
        description="List every model --model can name: licence, input size, published COCO "
                    "val2017 mAP50-95, parameters, download size and whether it is in the "
                    "cache ($DETSTREAM_CACHE/models, default ~/.cache/detstream/models). "
                    "Downloads go through $DETSTREAM_MODEL_MIRROR when it is set (a folder of "
                    "the files under their own names behind a web server).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fetch", nargs="+", default=None, metavar="NAME",
                        help="download these models into the cache now (verified)")
    parser.add_argument("--family", action="store_true",
                        help="also list the detector family's sizes with parameters and GFLOPs")
    parser.add_argument("--imgsz", type=positive_int, default=320,
                        help="square input size for the family's GFLOPs (default 320)")
    parser.add_argument("--classes", type=bounded_int(1, 10_000), default=80,
                        help="classes of the family's head (default 80)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from detstream.engines.zoo.catalog import require_named

    if args.fetch:
        from detstream.engines.zoo.resolve import resolve_model

        for name in args.fetch:
            entry = require_named(name)
            source = resolve_model(entry.name, log=lambda m: print(m, file=sys.stderr))
            where = "embedded" if entry.kind == "embedded" else str(source.path)
            print(f"{entry.name}: {where}")
        return 0
    _print_catalog()
    if args.family:
        _print_family(args.imgsz, args.classes)
    return 0


def _print_catalog() -> None:
    from detstream.engines.zoo.catalog import CATALOG
    from detstream.engines.zoo.download import cached_file
    from detstream.engines.zoo.resolve import DEFAULT_WEIGHTS

    print(f"{'name':<18}{'licence':<28}{'input':>6}{'COCO mAP':>10}{'params':>9}"
          f"{'download':>11}  cached")
    for entry in CATALOG.values():
        if entry.kind == "embedded":
            cached = "embedded" if DEFAULT_WEIGHTS.is_file() else "missing (reinstall)"
            download = "-"
        else:
            cached = "yes" if cached_file(entry.file_name) else "no"
            download = f"~{entry.download_mb:g} MB"
        coco = f"{entry.coco_map:.1f}" if entry.coco_map is not None else "-"
        params = f"{entry.params_m:g}M" if entry.params_m else _default_params()
        print(f"{entry.name:<18}{entry.licence:<28}{entry.input_size:>6}{coco:>10}{params:>9}"
              f"{download:>11}  {cached}")
    print("\nCOCO mAP: mAP50-95 on COCO val2017 as published with the weights (torchvision's "
          "ResNet-50 models at 800 px; run here at 640).\ndefault knows the synthetic world's "
          "classes only (see detstream models --family).")


def _default_params() -> str:
    from detstream.engines.models import count_parameters
    from detstream.engines.zoo import DEFAULT_WEIGHTS, load_model

    if not DEFAULT_WEIGHTS.is_file():
        return "-"
    model, _, _ = load_model("default")
    return f"{count_parameters(model) / 1e6:.2f}M"


def _print_family(imgsz: int, classes: int) -> None:
    from detstream.engines.models import SCALES, Detector, count_gflops, count_parameters
    from detstream.engines.spec import check_input_size
    from detstream.engines.zoo import DEFAULT_WEIGHTS, load_model

    check_input_size(imgsz, 32)
    print(f"\n{'model':<14}{'classes':>8}{'params':>10}{'GFLOPs':>9}  at {imgsz}x{imgsz}")
    for size in SCALES:
        model = Detector(size, classes)
        print(f"{'detstream-' + size:<14}{classes:>8}{count_parameters(model) / 1e6:>9.2f}M"
              f"{count_gflops(model, imgsz):>9.2f}")
    if DEFAULT_WEIGHTS.is_file():
        model, spec, sidecar = load_model("default")
        metrics = sidecar.get("metrics", {})
        print(f"\ndefault: {spec.name}, {spec.num_classes} classes ({', '.join(spec.class_names)})"
              f", input {spec.input_size[1]}x{spec.input_size[0]}, "
              f"{count_parameters(model) / 1e6:.2f}M params, "
              f"mAP50 {metrics.get('map50', float('nan')):.3f} "
              f"mAP50-95 {metrics.get('map50_95', float('nan')):.3f} (synthetic val)")
