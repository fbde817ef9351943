"""``detstream bench pipeline``: its arguments and handler (the benchmark is ``pipeline.py``)."""

from __future__ import annotations

import argparse

from detstream.engines.errors import UserInputError
from detstream.stream.bench import job
from detstream.stream.commands.args import positive_float, positive_int


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench pipeline`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "pipeline", run, runs_pipeline=True,
        help="stages alone, the ceiling, sequential vs pipelined FPS, latency",
        description="On the same frames and model, with tracking, drawing and H.264 output "
                    "(or tracking and JSON Lines only, --outputs jsonl): "
                    "each stage alone (wall and CPU time; inference at each thread setting), "
                    "the ceiling min(1 / slowest stage, cores / sum of the stages' CPU time) "
                    "for the best inference setting, a sequential one-thread loop, and the "
                    "pipeline with its latency.",
        epilog="examples:\n  detstream bench pipeline --source clip.mp4 --model default\n"
               "  detstream bench pipeline --source bikes.mp4 --model yolox_nano.onnx "
               "--names coco.txt --json b.json")
    parser.add_argument("--source", required=True, help="a video file, folder or synthetic://")
    job.add_pipeline_arguments(parser)
    parser.add_argument("--frames", type=positive_int, default=300,
                        help="frames to use (default 300)")
    parser.add_argument("--outputs", choices=("video", "jsonl"), default="video",
                        help="what the runs write: video (drawn, H.264; default) or jsonl "
                             "(tracking and JSON Lines only, nothing drawn)")
    parser.add_argument("--replay-ms", type=positive_float, default=None, metavar="T",
                        help="record the model's outputs once, then run the pipeline replaying "
                             "them at T ms per frame (a GPU engine's time) against the ceiling "
                             "of the other stages")
    parser.add_argument("--runs", type=positive_int, default=3,
                        help="pipelined runs; the median one is reported (default 3)")
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Measure the stages and the pipeline (or the pipeline around a replayed model)."""
    from detstream.stream.bench.pipeline import (
        bench_pipeline,
        bench_replay,
        print_pipeline,
        print_replay,
    )

    if args.replay_ms is not None:
        if args.outputs != "video":
            raise UserInputError("--replay-ms measures drawing and H.264 output next to a GPU "
                                 "engine; drop --outputs jsonl")
        result = bench_replay(args.source, job.bench_model(args), args.replay_ms, args.frames,
                              args.tracker, log=job.log, runs=args.runs)
        print_replay(result)
    else:
        result = bench_pipeline(args.source, job.bench_model(args), args.frames,
                                args.tracker, log=job.log, outputs=args.outputs,
                                runs=args.runs)
        print_pipeline(result)
    job.write_json(args.json, result)
    return 0
