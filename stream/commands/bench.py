"""``detstream bench``: benchmarks that print figures (recorded in BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detstream.stream.commands.args import (
    CUDA_GRAPH_HELP,
    add_model_arguments,
    fraction,
    non_negative_float,
    output_file,
    positive_float,
    positive_int,
)
from detstream.stream.commands.plugins import add_plugins

EXAMPLES = """examples:
  detstream bench engine --model default --backend all --imgsz 320,416,640 --batch 1,8
  detstream bench engine --model yolox_nano.onnx --backend onnxruntime --batch 1 --json b.json
"""

VARIANTS = ("tensorrt", "torch-fp16", "torch-fp32", "onnxruntime")
ALIASES = ("torch",)  # torch at the device's default precision (FP16 on CUDA, FP32 on the CPU)


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 320,416, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, backend and tracker options shared by the pipeline benchmarks."""
    add_model_arguments(parser)
    parser.add_argument("--names", default=None, help="class names for an ONNX file")
    parser.add_argument("--imgsz", type=positive_int, default=None,
                        help="input size (checkpoints)")
    parser.add_argument("--backend", default="auto",
                        choices=("auto", "tensorrt", "torch", "onnxruntime"))
    parser.add_argument("--tracker", default="botsort", help="botsort, bytetrack or none")
    parser.add_argument("--cuda-graph", action="store_true",
                        help=CUDA_GRAPH_HELP)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bench", help="benchmarks: engines and the pipeline",
                                 epilog=EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)
    engine = jobs.add_parser(
        "engine", help="ms and FPS of a model per backend, input size and batch",
        description="Times inference alone (preprocessed real frames in, raw output out) for "
                    "each backend that can run here. Backends: tensorrt (FP16), torch-fp16 "
                    "(CUDA), torch-fp32, onnxruntime (CPU, or CUDA with onnxruntime-gpu); "
                    "'all' runs every one available and says why the others are skipped.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(engine)
    engine.add_argument("--backend", default="all",
                        help=f"all or a comma list of {', '.join(VARIANTS)} (default all)")
    engine.add_argument("--imgsz", type=int_list, default=None,
                        help="comma list of input sizes (default: the model's own)")
    engine.add_argument("--batch", type=int_list, default=[1], help="comma list (default 1)")
    engine.add_argument("--seconds", type=positive_float, default=3.0,
                        help="timing per row in seconds (default 3)")
    engine.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for torch and onnxruntime (default: all cores)")
    engine.add_argument("--device", default=None, help="cpu or cuda (default: best here)")
    engine.add_argument("--cuda-graph", action="store_true",
                        help=CUDA_GRAPH_HELP)
    engine.add_argument("--names", default=None, help="class names for an ONNX file")
    engine.add_argument("--json", type=output_file, default=None, help="also write the rows here")
    engine.set_defaults(handler=run_engine)

    pipe = jobs.add_parser(
        "pipeline", help="stages alone, the ceiling, sequential vs pipelined FPS, latency",
        description="On the same frames and model, with tracking, drawing and H.264 output: "
                    "each stage alone (wall and CPU time; inference at each thread setting), "
                    "the ceiling min(1 / slowest stage, cores / sum of the stages' CPU time) "
                    "for the best inference setting, a sequential one-thread loop, and the "
                    "pipeline with its latency.",
        epilog="examples:\n  detstream bench pipeline --source clip.mp4 --model default\n"
               "  detstream bench pipeline --source bikes.mp4 --model yolox_nano.onnx "
               "--names coco.txt --json b.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    pipe.add_argument("--source", required=True, help="a video file, folder or synthetic://")
    _model_arguments(pipe)
    pipe.add_argument("--frames", type=positive_int, default=300,
                      help="frames to use (default 300)")
    pipe.add_argument("--json", type=output_file, default=None, help="also write the figures here")
    pipe.set_defaults(handler=run_pipeline, runs_pipeline=True)

    live = jobs.add_parser(
        "live", help="a paced live source for a while: latency against processing time, drift",
        description="Runs a live source (default: a synthetic scene paced at 30 fps at 1280x720) "
                    "with tracking, drawing and H.264 output for --seconds and reports latency "
                    "p50/p95 against the mean per-frame processing time, and the drift between "
                    "the p95 of the first and last 30 s.",
        epilog="examples:\n  detstream bench live --seconds 120 --json live.json\n"
               "  detstream bench live --seconds 120 --imgsz 640   "
               "# a model slower than the 30 fps camera: frames are dropped",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    live.add_argument("--source",
                      default="synthetic://?seed=0&size=1280x720&fps=30&live=1&camera_motion=1"
                              "&min_size=48&max_size_frac=0.35",
                      help="a live source (default: paced synthetic scene, 30 fps, 1280x720)")
    _model_arguments(live)
    live.add_argument("--seconds", type=positive_float, default=120.0,
                      help="duration (default 120)")
    live.add_argument("--json", type=output_file, default=None, help="also write the figures here")
    live.set_defaults(handler=run_live, runs_pipeline=True)

    tracker = jobs.add_parser(
        "tracker", help="tracker frames/s on MOT detections; camera-motion estimate frames/s",
        description="Times the tracker alone on a MOTChallenge detections file (no images, so "
                    "no camera-motion or cut detection), repeated to a few seconds, and the "
                    "camera-motion estimate on rendered frames of a panning synthetic scene.",
        epilog="examples:\n  detstream bench tracker --dets TUD-Campus/det.txt --fps 25",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    tracker.add_argument("--dets", type=Path, required=True, help="MOTChallenge detections")
    tracker.add_argument("--fps", type=positive_float, default=30.0, help="sequence frame rate")
    tracker.add_argument("--trackers", default="bytetrack,botsort", help="comma list")
    tracker.add_argument("--size", default="1280x720", help="frame size for camera motion")
    tracker.add_argument("--seconds", type=positive_float, default=3.0, help="time per measurement")
    tracker.add_argument("--json", type=output_file, default=None,
                         help="also write the figures here")
    tracker.set_defaults(handler=run_tracker)

    mot = jobs.add_parser(
        "mot", help="tracking accuracy (HOTA, MOTA, IDF1) on held-out synthetic scenes",
        description="Renders held-out synthetic scenes (seeds from 1000; camera motion on every "
                    "other one) and tracks two detection streams with each tracker variant: "
                    "the model's detections, and the truth degraded (jitter, dropped and false "
                    "boxes). TrackEval scores all scenes, the static ones and the moving ones.",
        epilog="examples:\n  detstream bench mot --scenes 6 --json runs/bench/mot.json\n"
               "  detstream bench mot --model none --scenes 10",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mot.add_argument("--scenes", type=positive_int, default=6, help="number of scenes (default 6)")
    mot.add_argument("--frames", type=positive_int, default=300,
                     help="frames per scene (default 300)")
    mot.add_argument("--size", default="640x360", help="frame size (default 640x360)")
    mot.add_argument("--fps", type=positive_float, default=30.0, help="frame rate (default 30)")
    mot.add_argument("--model", default="default",
                     help="detector for the model stream, or none (default: default)")
    mot.add_argument("--conf", type=fraction, default=0.1,
                     help="detector score threshold (default 0.1: the trackers use low scores)")
    mot.add_argument("--backend", default="auto",
                     choices=("auto", "tensorrt", "torch", "onnxruntime"))
    mot.add_argument("--json", type=output_file, default=None, help="also write the figures here")
    mot.set_defaults(handler=run_mot)
    soak = jobs.add_parser(
        "soak", help="hours of the full pipeline: memory slope, descriptor and thread peaks",
        description="Runs what `detstream run` runs (model, tracking, drawing, H.264 and JSON "
                    "Lines outputs, truth scores on synthetic sources) for --minutes, samples "
                    "resident memory, open file descriptors and threads every --every seconds, "
                    "and prints the memory slope after warm-up (least squares, MB per hour) "
                    "and the peaks. File sources loop, so any file lasts the whole soak.",
        epilog="examples:\n  detstream bench soak --minutes 30 --json soak-live.json\n"
               "  detstream bench soak --source bikes.mp4 --minutes 30 --json soak-file.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    soak.add_argument("--source", default="synthetic://?seed=0&size=640x360&fps=30&live=1"
                                          "&frames=0&objects=8",
                      help="any source (default: a paced live synthetic scene, 30 fps, 640x360); "
                           "files loop")
    _model_arguments(soak)
    soak.add_argument("--minutes", type=positive_float, default=30.0,
                      help="duration (default 30)")
    soak.add_argument("--every", type=positive_float, default=5.0, metavar="SECONDS",
                      help="sampling interval (default 5)")
    soak.add_argument("--warmup-minutes", type=non_negative_float, default=None,
                      help="left out of the slope (default: a third of the run, at most 5)")
    soak.add_argument("--keep", type=Path, default=None, metavar="DIR",
                      help="write the outputs here instead of a temporary folder")
    soak.add_argument("--json", type=output_file, default=None, help="also write the figures here")
    soak.set_defaults(handler=run_soak, runs_pipeline=True)
    add_plugins("detstream.bench", jobs)  # `bench demo` comes with the demo package


def _variants(text: str) -> list[str]:
    from detstream.engines.errors import UserInputError

    if text == "all":
        return list(VARIANTS)
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS + ALIASES]
    if unknown:
        raise UserInputError(f"--backend {text}: unknown {', '.join(unknown)}; choose all or "
                             f"from {', '.join(VARIANTS)}")
    return names


def run_engine(args: argparse.Namespace) -> int:
    from detstream.engines.errors import UserInputError
    from detstream.engines.export.parity import sample_frames
    from detstream.engines.runtime.availability import cuda_unavailable_reason
    from detstream.engines.runtime.benchmark import time_backend
    from detstream.engines.runtime.select import open_backend, resolve_model

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    variants = _variants(args.backend)
    source = resolve_model(args.model, args.names, args.weights, log)
    sizes = args.imgsz or [source.spec.input_size[0]]
    no_cuda = cuda_unavailable_reason()
    device = args.device or ("cpu" if no_cuda else "cuda")
    frames = sample_frames(4)
    rows, skipped = [], []

    print(f"{'backend':<58}{'imgsz':>6}{'batch':>6}{'ms':>9}{'p95 ms':>9}{'FPS':>9}")
    for variant in variants:
        kind = variant.split("-")[0]
        half = {"torch-fp16": True, "torch-fp32": False}.get(variant)
        if variant == "torch-fp16" and device == "cpu":
            skipped.append(f"{variant}: needs CUDA ({no_cuda or 'CPU requested'})")
            continue
        if kind == "torch" and not source.runs_on_torch:
            skipped.append(f"{variant}: runs checkpoints and torchvision models, not ONNX "
                           "files")
            continue
        # Every (size, batch) of one variant; the first failure to open skips the variant.
        combos = [(size, batch) for size in sizes for batch in args.batch]
        for size, batch in combos:
            if source.is_onnx and source.spec.input_size[0] != size:
                skipped.append(f"{variant} at {size}: the ONNX file's input is fixed at "
                               f"{source.spec.input_size[0]}")
                continue
            try:
                backend = open_backend(source, kind, device if kind != "tensorrt" else None,
                                       imgsz=None if source.is_onnx else size, max_batch=batch,
                                       names=args.names, threads=args.threads, half=half,
                                       cuda_graph=args.cuda_graph, weights=args.weights,
                                       log=log)
            except UserInputError as exc:
                skipped.append(f"{variant}: {exc}")
                break
            if batch > backend.max_batch:
                skipped.append(f"{variant} batch {batch}: the model takes at most "
                               f"{backend.max_batch}")
                continue
            row = time_backend(backend, frames, batch, args.seconds)
            backend.close()
            rows.append(row.to_dict())
            print(f"{row.backend:<58}{row.imgsz:>6}{row.batch:>6}{row.ms:>9.2f}"
                  f"{row.p95_ms:>9.2f}{row.fps:>9.1f}", flush=True)
    for line in dict.fromkeys(skipped):
        print(f"skipped {line}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "rows": rows,
                                         "skipped": list(dict.fromkeys(skipped))}, indent=2)
                             + "\n", encoding="utf-8")
    if not rows:  # nothing timed: say why on the error line
        raise UserInputError(f"no backend could be timed ({skipped[0] if skipped else 'none'})")
    return 0


def run_pipeline(args: argparse.Namespace) -> int:
    from detstream.stream.bench import bench_pipeline

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = bench_pipeline(args.source, args.model, args.imgsz, args.frames, args.backend,
                            None if args.tracker == "none" else args.tracker, args.names,
                            cuda_graph=args.cuda_graph, weights=args.weights, log=log)
    print(f"{'stage (alone)':<20}{'wall ms':>10}{'CPU ms':>10}   per frame")
    for name, ms in result["stage_ms"].items():
        print(f"{name:<20}{ms:>10.2f}{result['stage_cpu_ms'][name]:>10.2f}")
    spinning = ", spinning" if result["inference_spin"] else ""
    print(f"inference only     {result['inference_only_fps']:>8.1f} FPS "
          f"({result['inference_threads']} threads{spinning})")
    print(f"ceiling            {result['ceiling_fps']:>8.1f} FPS")
    print(f"sequential         {result['sequential_fps']:>8.1f} FPS")
    print(f"pipelined          {result['pipelined_fps']:>8.1f} FPS  "
          f"({result['pipelined_vs_sequential']:.2f}x sequential, "
          f"{result['pipelined_vs_ceiling']:.2f}x ceiling)")
    print(f"latency p50 {result['latency_ms_p50']:.0f} ms, p95 {result['latency_ms_p95']:.0f} ms")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def run_tracker(args: argparse.Namespace) -> int:
    import time

    from detstream.engines.data.mot import read_mot
    from detstream.engines.data.synthetic import SceneConfig, SyntheticScene, parse_size
    from detstream.engines.spec import Detections
    from detstream.stream.track import make_tracker
    from detstream.stream.track.motion import CameraMotion

    detections = read_mot(args.dets, empty_ok=False)
    last = max(detections, default=0)
    frames = [detections.get(i, Detections.empty()) for i in range(1, last + 1)]
    result: dict = {"dets": str(args.dets), "frames": last, "trackers": {}}
    for name in [n.strip() for n in args.trackers.split(",") if n.strip()]:
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            tracker = make_tracker(name, args.fps)
            for dets in frames:
                tracker.update(dets)
            done += len(frames)
        rate = done / (time.perf_counter() - start)
        result["trackers"][name] = round(rate, 1)
        print(f"{name:<10} {rate:>9.0f} frames/s on {args.dets.name} ({last} frames, "
              "detections only)")
    width, height = parse_size(args.size)
    config = SceneConfig(width=width, height=height, fps=30, frames=60, seed=11,
                         camera_motion=True, objects=10)
    images = [image for image, _ in SyntheticScene(config)]
    motion = CameraMotion()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        motion.reset()
        for image in images:
            motion.estimate(image)
        done += len(images)
    rate = done / (time.perf_counter() - start)
    result["camera_motion_fps"] = round(rate, 1)
    result["camera_motion_size"] = args.size
    print(f"camera motion {rate:>6.0f} frames/s at {args.size}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def run_mot(args: argparse.Namespace) -> int:
    from detstream.engines.data.synthetic import parse_size
    from detstream.stream.tracking_bench import bench_tracking, scene_configs, summary_rows

    detector = None
    if args.model != "none":
        from detstream.engines.predict import Predictor
        from detstream.engines.runtime.select import open_backend

        predictor = Predictor(open_backend(args.model, args.backend), conf=args.conf)

        def detector(frame):
            return predictor([frame])[0]

    configs = scene_configs(args.scenes, args.frames, parse_size(args.size), args.fps)
    report = bench_tracking(configs, detector,
                            progress=lambda line: print(line, file=sys.stderr, flush=True))
    report.update(model=args.model, conf=args.conf, size=args.size, fps=args.fps,
                  frames=args.frames)
    print(f"{'detections':<12}{'tracker':<21}{'scenes':<8}{'HOTA':>7}{'MOTA':>7}{'IDF1':>7}"
          f"{'IDSW':>6}{'FP':>7}{'FN':>7}")
    for stream, variant, group, s in summary_rows(report):
        print(f"{stream:<12}{variant:<21}{group:<8}{s.HOTA:>7.3f}{s.MOTA:>7.3f}{s.IDF1:>7.3f}"
              f"{s.IDSW:>6}{s.FP:>7}{s.FN:>7}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def run_live(args: argparse.Namespace) -> int:
    from detstream.stream.bench import bench_live

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = bench_live(args.source, args.model, args.seconds, args.imgsz, args.backend,
                        None if args.tracker == "none" else args.tracker, args.names,
                        cuda_graph=args.cuda_graph, weights=args.weights, log=log)
    for key in ("seconds", "source_fps", "output_fps", "frames_in", "frames_out",
                "frames_dropped", "processing_ms_mean", "latency_ms_p50", "latency_ms_p95",
                "latency_p95_vs_processing", "first_window_p95_ms", "last_window_p95_ms",
                "drift"):
        print(f"{key:<28}{result[key]}")
    if result["frames_dropped"]:
        print(f"the pipeline was slower than the {result['source_fps']:g} fps source: "
              f"{result['frames_dropped']} frames dropped, newest frames kept")
    else:
        print(f"the pipeline kept up with the {result['source_fps']:g} fps source")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def run_soak(args: argparse.Namespace) -> int:
    from detstream.engines.paths import writable_dir
    from detstream.stream.session import RunConfig
    from detstream.stream.soak import bench_soak

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.json is not None:
        writable_dir(args.json.parent)
    if args.keep is not None:
        writable_dir(args.keep)
    config = RunConfig(source=args.source, model=args.model, weights=args.weights,
                       names=args.names, imgsz=args.imgsz, backend=args.backend,
                       cuda_graph=args.cuda_graph,
                       tracker=None if args.tracker == "none" else args.tracker)
    warmup = None if args.warmup_minutes is None else args.warmup_minutes * 60.0
    result = bench_soak(config, args.minutes, args.every, warmup, args.keep, log)
    for key in ("source", "minutes", "frames", "frames_dropped", "fps", "warmup_minutes",
                "rss_slope_mb_per_hour", "rss_anon_slope_mb_per_hour",
                "heap_used_slope_mb_per_hour", "heap_free_end_mb",
                "rss_start_mb", "rss_end_mb", "rss_peak_mb",
                "fds_peak", "threads_peak"):
        print(f"{key:<24}{result[key]}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0
