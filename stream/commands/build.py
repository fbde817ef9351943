"""``detstream build``: a TensorRT FP16 engine for a model, kept in the engine cache."""

from __future__ import annotations

import argparse
import sys

from detstream.stream.commands.args import add_model_arguments, positive_float

EXAMPLES = """examples:
  detstream build --model default
  detstream build --model default --batch 8 --imgsz 416
  detstream build --model yolox_nano.onnx --workspace 2
"""


def batch_range(text: str) -> int:
    """``N`` or ``1-N`` → N, the largest batch the engine takes.

    Engines always cover batch 1..N: the same profile ``detstream run`` and ``open_backend``
    ask for, so a built engine is the one they find in the cache.
    """
    try:
        parts = [int(p) for p in text.split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or 1-N, got {text!r}") from None
    if len(parts) == 2 and parts[0] != 1:
        raise argparse.ArgumentTypeError(
            f"engines cover batch 1 to N, so that every command finds them in the cache; "
            f"pass --batch {parts[1]}")
    if len(parts) not in (1, 2) or parts[-1] < 1:
        raise argparse.ArgumentTypeError(f"expected N or 1-N with N >= 1, got {text!r}")
    return parts[-1]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "build", help="build a TensorRT FP16 engine (cached) for a model",
        description="Export the model to FP16 ONNX when it is a checkpoint, then build a "
                    "strongly typed TensorRT engine with an optimization profile over batch 1 "
                    "to --batch (a fixed batch in an ONNX file is kept). Engines are cached "
                    "in $DETSTREAM_CACHE/engines (default "
                    "~/.cache/detstream/engines) by ONNX SHA-256, TensorRT and CUDA version, "
                    "GPU and profile; an engine that no longer loads is rebuilt.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, device="cuda", device_help="CUDA device (default cuda)")
    parser.add_argument("--batch", type=batch_range, default=1, metavar="N",
                        help="largest batch the engine accepts (default 1)")
    parser.add_argument("--workspace", type=positive_float, default=4.0, metavar="GB",
                        help="builder workspace limit in GiB (default 4)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from detstream.engines.runtime.select import cached_onnx, resolve_model
    from detstream.engines.tensorrt.builder import import_tensorrt, load_or_build, require_cuda

    import_tensorrt()
    device = require_cuda(args.device)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    source = resolve_model(args.model, args.names, args.weights, log)

    if source.is_onnx:  # FP32 files get the same cached FP16 copy open_backend uses
        from detstream.engines.export.fp16 import cached_fp16

        path = cached_fp16(source.path, log)
    else:
        path, _ = cached_onnx(source, args.imgsz, True, args.batch, log)
    # The same call open_backend makes (TensorRTBackend): one key, one cached engine.
    _, engine_path, key, _ = load_or_build(path, args.batch, device, args.workspace, log)
    low, _, high = key.batch
    print(f"engine: {engine_path} ({engine_path.stat().st_size / 1e6:.1f} MB, batch "
          f"{low}-{high})")
    return 0
