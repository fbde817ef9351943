"""``detstream bench engine``: its arguments and handler (the benchmark is ``engine.py``)."""

from __future__ import annotations

import argparse

from detstream.stream.bench import job
from detstream.stream.commands.args import add_model_arguments, positive_float

#: Also the epilog of ``detstream bench`` itself.
EXAMPLES = """examples:
  detstream bench engine --model default --backend all --imgsz 320,416,640 --batch 1,8
  detstream bench engine --model yolox_nano.onnx --backend onnxruntime --batch 1 --json b.json
  detstream bench engine --model d.onnx --backend onnxruntime-fp32,onnxruntime-int8 --threads 1,2
"""


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench engine`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "engine", run, help="ms and FPS of a model per backend, input size and batch",
        description="Times inference alone (preprocessed real frames in, raw output out) for "
                    "each backend that can run here. Backends: tensorrt (FP16), torch-fp16 "
                    "(CUDA), torch-fp32, onnxruntime (CPU, or CUDA with onnxruntime-gpu); "
                    "'all' runs every one available and says why the others are skipped. "
                    "onnxruntime-fp32 and onnxruntime-int8 (named only) time an ONNX file and "
                    "its INT8 copy from detstream export --int8 on the CPU.",
        epilog=EXAMPLES)
    # Its own --backend (a list of variants) and --imgsz (a list of sizes); the rest shared.
    add_model_arguments(parser, imgsz=False, device=None,
                        device_help="cpu or cuda (default: best here)", cuda_graph=True)
    parser.add_argument("--backend", default="all",
                        help="all or a comma list of tensorrt, torch-fp16, torch-fp32, "
                             "onnxruntime, onnxruntime-fp32, onnxruntime-int8 (default all)")
    parser.add_argument("--threads", type=job.int_list, default=[None], metavar="N[,N...]",
                        help="CPU threads for torch and onnxruntime, a comma list timed in turn "
                             "(default: chosen for the machine)")
    parser.add_argument("--imgsz", type=job.int_list, default=None,
                        help="comma list of input sizes (default: the model's own)")
    parser.add_argument("--batch", type=job.int_list, default=[1], help="comma list (default 1)")
    parser.add_argument("--seconds", type=positive_float, default=3.0,
                        help="timing per row in seconds (default 3)")
    job.add_json_argument(parser, "rows")


def run(args: argparse.Namespace) -> int:
    """Time every variant, size and batch; print the rows and what was skipped."""
    from detstream.stream.bench.engine import (
        bench_engine,
        check_timed,
        parse_variants,
        print_skipped,
    )

    result = bench_engine(args.model, parse_variants(args.backend), args.imgsz, args.batch,
                          args.seconds, args.threads, args.device, args.cuda_graph, args.names,
                          args.weights, log=job.log, show=job.show)
    print_skipped(result)
    job.write_json(args.json, result)
    check_timed(result)  # nothing timed: say why on the error line
    return 0
