"""``detstream bench``: the jobs' arguments. The benchmarks themselves are in
``detstream.stream.bench``, imported by each handler (after ``runs_pipeline`` set the thread
policy, and so that ``--help`` loads no torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from detstream.engines.errors import UserInputError
from detstream.stream.commands.args import (
    add_model_arguments,
    bounded_int,
    fraction,
    non_negative_float,
    non_negative_int,
    output_file,
    positive_float,
    positive_int,
)
from detstream.stream.commands.plugins import add_plugins

if TYPE_CHECKING:
    from detstream.stream.bench.common import BenchModel

EXAMPLES = """examples:
  detstream bench engine --model default --backend all --imgsz 320,416,640 --batch 1,8
  detstream bench engine --model yolox_nano.onnx --backend onnxruntime --batch 1 --json b.json
"""


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
    add_model_arguments(parser, backend="auto", cuda_graph=True)
    parser.add_argument("--tracker", default="botsort", help="botsort, bytetrack or none")


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
    # Its own --backend (a list of variants) and --imgsz (a list of sizes); the rest shared.
    add_model_arguments(engine, imgsz=False, device=None,
                        device_help="cpu or cuda (default: best here)", threads=True,
                        cuda_graph=True)
    engine.add_argument("--backend", default="all",
                        help="all or a comma list of tensorrt, torch-fp16, torch-fp32, onnxruntime "
                             "(default all)")
    engine.add_argument("--imgsz", type=int_list, default=None,
                        help="comma list of input sizes (default: the model's own)")
    engine.add_argument("--batch", type=int_list, default=[1], help="comma list (default 1)")
    engine.add_argument("--seconds", type=positive_float, default=3.0,
                        help="timing per row in seconds (default 3)")
    engine.add_argument("--json", type=output_file, default=None, help="also write the rows here")
    engine.set_defaults(handler=run_engine)

    pipe = jobs.add_parser(
        "pipeline", help="stages alone, the ceiling, sequential vs pipelined FPS, latency",
        description="On the same frames and model, with tracking, drawing and H.264 output "
                    "(or tracking and JSON Lines only, --outputs jsonl): "
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
    pipe.add_argument("--outputs", choices=("video", "jsonl"), default="video",
                      help="what the runs write: video (drawn, H.264; default) or jsonl "
                           "(tracking and JSON Lines only, nothing drawn)")
    pipe.add_argument("--replay-ms", type=positive_float, default=None, metavar="T",
                      help="record the model's outputs once, then run the pipeline replaying "
                           "them at T ms per frame (a GPU engine's time) against the ceiling "
                           "of the other stages")
    pipe.add_argument("--json", type=output_file, default=None, help="also write the figures here")
    pipe.set_defaults(handler=run_pipeline, runs_pipeline=True)

    multi = jobs.add_parser(
        "multistream", help="one batched multi-stream process vs N separate processes",
        description="Runs N streams of the same source two ways on this machine: one "
                    "`detstream run` process with N --source (one model, batched inference) "
                    "and N separate single-stream processes at the same time, each with "
                    "tracking and JSON Lines output, and compares their aggregate FPS "
                    "(model loading left out of both).",
        epilog="examples:\n  detstream bench multistream --source bikes.mp4 --streams 4 "
               "--json multi.json\n"
               "  detstream bench multistream --source clip.mp4 --streams 8 --model yolox-nano",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    multi.add_argument("--source", required=True, help="a video file, folder or synthetic://")
    multi.add_argument("--streams", type=bounded_int(2, 64), default=4,
                       help="streams on each side (default 4)")
    _model_arguments(multi)
    multi.add_argument("--frames", type=positive_int, default=300,
                       help="frames per stream (default 300)")
    multi.add_argument("--output-video", action="store_true",
                       help="also write each stream's H.264 video")
    multi.add_argument("--json", type=output_file, default=None,
                       help="also write the figures here")
    multi.set_defaults(handler=run_multistream)

    fleet = jobs.add_parser(
        "fleet", help="the fleet on Ray vs one plain multi-stream process; recovery time",
        description="Runs N streams as one plain multi-stream `detstream run` process and as "
                    "`detstream fleet run` on a local Ray instance whose workers hold the same "
                    "cores, and compares their aggregate FPS (Ray, workers and models starting "
                    "left out). --kill also kills a worker of a two-worker fleet mid-run and "
                    "times the recovery: to the loss being noticed and to the moved stream's "
                    "first new frame; then checks every frame was written exactly once.",
        epilog="examples:\n  detstream bench fleet --streams 4 --json fleet.json\n"
               "  detstream bench fleet --streams 4 --workers 2 --kill",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fleet.add_argument("--source", default="synthetic://?seed=3&size=640x360&objects=6",
                       help="a synthetic:// scene (its length is set from --frames)")
    fleet.add_argument("--streams", type=bounded_int(1, 64), default=4,
                       help="streams on each side (default 4)")
    _model_arguments(fleet)
    fleet.add_argument("--frames", type=positive_int, default=300,
                       help="frames per stream (default 300)")
    fleet.add_argument("--workers", type=bounded_int(1, 64), default=1,
                       help="Ray workers sharing this machine's CPUs (default 1)")
    fleet.add_argument("--kill", action="store_true",
                       help="also time the recovery from a killed worker")
    fleet.add_argument("--kill-after", type=positive_int, default=30, metavar="FRAMES",
                       help="frames the killed worker's stream writes first (default 30)")
    fleet.add_argument("--json", type=output_file, default=None,
                       help="also write the figures here")
    fleet.set_defaults(handler=run_fleet_bench)

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
    tracker.add_argument("--embed-dims", type=_embed_dims, default=(), metavar="D[,D...]",
                         help="also time each tracker with random unit embeddings of these "
                              "widths on every detection (appearance fusion), e.g. 32,64")
    tracker.add_argument("--json", type=output_file, default=None,
                         help="also write the figures here")
    tracker.set_defaults(handler=run_tracker)

    mot = jobs.add_parser(
        "mot", help="tracking accuracy (HOTA, MOTA, IDF1) on held-out synthetic scenes or real "
                    "MOTChallenge sequences",
        description="Renders held-out synthetic scenes (seeds from 1000; the --kinds in turn, "
                    "by default a static camera and a moving one) and tracks two detection "
                    "streams with each tracker variant: the model's detections, and the truth "
                    "degraded (jitter, dropped and false boxes). TrackEval scores all scenes, "
                    "the static ones, the moving ones and each kind. With --public DIR it "
                    "renders nothing and instead tracks every real sequence under DIR (folders "
                    "with det.txt, gt.txt and seqinfo.ini) at its own frame rate and size, as "
                    "detstream track does, and scores two outputs per sequence and TrackEval's "
                    "combined over all of them: online (track --no-interpolate) and gap-filled "
                    "(track's default output).",
        epilog="examples:\n  detstream bench mot --scenes 6 --json runs/bench/mot.json\n"
               "  detstream bench mot --model none --scenes 10\n"
               "  detstream bench mot --kinds all --scenes 16\n"
               "  detstream bench mot --public ../shared/data/mot15 --json mot15.json\n"
               "  detstream bench mot --public ../shared/data/mot15 --tracker bytetrack "
               "--config tracker.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mot.add_argument("--public", type=Path, default=None, metavar="DIR",
                     help="score the real MOTChallenge sequences under DIR instead of rendered "
                          "scenes (the scene and model options do not apply)")
    mot.add_argument("--tracker", default=None,
                     help="with --public: botsort (default) or bytetrack")
    mot.add_argument("--config", type=Path, default=None, metavar="YAML",
                     help="with --public: tracker parameters to override, as for detstream "
                          "track --config")
    mot.add_argument("--scenes", type=positive_int, default=None,
                     help="number of scenes (default 6)")
    mot.add_argument("--frames", type=positive_int, default=300,
                     help="frames per scene (default 300)")
    mot.add_argument("--size", default="640x360", help="frame size (default 640x360)")
    mot.add_argument("--fps", type=positive_float, default=30.0, help="frame rate (default 30)")
    add_model_arguments(mot, model_help="detector for the model stream, or none (default: "
                                        "default)", imgsz=False, backend="auto")
    mot.add_argument("--kinds", default="static,moving", metavar="KIND,...",
                     help=f"scene kinds in turn, comma-separated: {', '.join(MOT_SCENE_KINDS)}; "
                          "or all (default static,moving)")
    mot.add_argument("--conf", type=fraction, default=0.1,
                     help="detector score threshold (default 0.1: the trackers use low scores)")
    mot.add_argument("--json", type=output_file, default=None, help="also write the figures here")
    mot.set_defaults(handler=run_mot)
    tune = jobs.add_parser(
        "tune", help="tracker defaults by HOTA over many sequences, with leave-one-out",
        description="Scores every candidate value of each --param (the others at their "
                    "defaults) with botsort on the held-out scenes of bench mot (both "
                    "detection streams) and on public MOTChallenge sequences; prints each "
                    "value's mean HOTA, IDF1 and MOTA, the value chosen, and the "
                    "leave-one-out HOTA: the mean, over sequences, of the value chosen without "
                    "each one. With --public-root DIR the choice is made on the real "
                    "sequences under DIR instead (each at its seqinfo.ini frame rate and size): "
                    "by TrackEval's combined HOTA over all of them, checked by "
                    "leave-one-sequence-out (each sequence tracked with the setting best on the "
                    "others, those outputs scored together), with the synthetic scenes' mean "
                    "HOTA beside as a second check (--scenes 0: none); --grid adds the "
                    "cartesian product of its parameters as one more choice.",
        epilog="examples:\n  detstream bench tune --param lost_seconds=0.5,1,2 "
               "--param match_cost=0.7,0.8,0.9 --kinds all --scenes 16 "
               "--public ../shared/data/mot15/TUD-Campus --json tune.json\n"
               "  detstream bench tune --public-root ../shared/data/mot15 --scenes 0 "
               "--param lost_seconds=1.5,2.5,4 --json tune-mot15.json\n"
               "  detstream bench tune --public-root ../shared/data/mot15 --model none "
               "--scenes 4 --grid match_cost=0.7,0.8 --grid high_score=0.4,0.5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    tune.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2,...",
                      help="a tracker parameter and its candidate values, varied alone "
                           "(repeat for more)")
    tune.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                      help="with --public-root: a parameter of a joint grid; every combination "
                           "of the --grid values is scored (repeat for each parameter)")
    tune.add_argument("--public-root", type=Path, default=None, metavar="DIR",
                      help="choose on every real MOTChallenge sequence under DIR (det.txt, "
                           "gt.txt and seqinfo.ini in each folder) by TrackEval's combined "
                           "HOTA, with leave-one-sequence-out")
    tune.add_argument("--scenes", type=non_negative_int, default=16,
                      help="held-out synthetic scenes (default 16; 0: none)")
    tune.add_argument("--frames", type=positive_int, default=300,
                      help="frames per scene (default 300)")
    tune.add_argument("--size", default="640x360", help="frame size (default 640x360)")
    tune.add_argument("--kinds", default="all", metavar="KIND,...",
                      help="scene kinds as for bench mot (default all)")
    add_model_arguments(tune, model_help="detector for the model stream, or none (default: "
                                         "default)", imgsz=False, backend="auto")
    tune.add_argument("--conf", type=fraction, default=0.1,
                      help="detector score threshold (default 0.1)")
    tune.add_argument("--public", action="append", default=[], metavar="DIR[:FPS[:WxH]]",
                      help="a MOTChallenge folder with det.txt and gt.txt, its frame rate and "
                           "frame size (default: its seqinfo.ini's; a size otherwise unknown)")
    tune.add_argument("--json", type=output_file, default=None,
                      help="also write the figures here")
    tune.set_defaults(handler=run_tune)
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


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _show(line: str) -> None:
    print(line, flush=True)


def _tracker(name: str) -> str | None:
    return None if name == "none" else name


def _model(args: argparse.Namespace) -> BenchModel:
    from detstream.stream.bench.common import BenchModel

    return BenchModel(args.model, args.backend, args.imgsz, args.names, args.cuda_graph,
                      args.weights)


def run_engine(args: argparse.Namespace) -> int:
    from detstream.stream.bench.common import write_json
    from detstream.stream.bench.engine import (
        bench_engine,
        check_timed,
        parse_variants,
        print_skipped,
    )

    result = bench_engine(args.model, parse_variants(args.backend), args.imgsz, args.batch,
                          args.seconds, args.threads, args.device, args.cuda_graph, args.names,
                          args.weights, log=_log, show=_show)
    print_skipped(result)
    write_json(args.json, result)
    check_timed(result)  # nothing timed: say why on the error line
    return 0


def run_pipeline(args: argparse.Namespace) -> int:
    from detstream.stream.bench.common import write_json
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
        result = bench_replay(args.source, _model(args), args.replay_ms, args.frames,
                              _tracker(args.tracker), log=_log)
        print_replay(result)
    else:
        result = bench_pipeline(args.source, _model(args), args.frames,
                                _tracker(args.tracker), log=_log, outputs=args.outputs)
        print_pipeline(result)
    write_json(args.json, result)
    return 0


def run_multistream(args: argparse.Namespace) -> int:
    from detstream.stream.bench.common import write_json
    from detstream.stream.bench.multistream import bench_multistream, print_multistream

    result = bench_multistream(args.source, args.streams, _model(args), args.frames,
                               _tracker(args.tracker), video=args.output_video, log=_log)
    print_multistream(result)
    write_json(args.json, result)
    return 0


def run_fleet_bench(args: argparse.Namespace) -> int:
    from detstream.stream.bench.common import write_json
    from detstream.stream.bench.fleet import bench_fleet, print_fleet
    from detstream.stream.fleet.controller import import_ray

    import_ray()
    if not args.source.startswith("synthetic://"):
        raise UserInputError(f"--source {args.source}: bench fleet runs synthetic:// scenes "
                             "(their length is set from --frames)")
    result = bench_fleet(args.source, args.streams, _model(args), args.frames,
                         _tracker(args.tracker), args.workers, args.kill, args.kill_after,
                         log=_log)
    print_fleet(result)
    write_json(args.json, result)
    return 0


def run_live(args: argparse.Namespace) -> int:
    from detstream.stream.bench.common import write_json
    from detstream.stream.bench.live import bench_live, print_live

    result = bench_live(args.source, _model(args), args.seconds, _tracker(args.tracker),
                        log=_log)
    print_live(result)
    write_json(args.json, result)
    return 0


def _embed_dims(text: str) -> tuple[int, ...]:
    """``--embed-dims 32,64``: embedding widths, each a positive whole number."""
    return tuple(positive_int(part.strip()) for part in text.split(",") if part.strip())


def run_tracker(args: argparse.Namespace) -> int:
    from detstream.stream.bench.common import write_json
    from detstream.stream.bench.tracker import bench_tracker

    trackers = [n.strip() for n in args.trackers.split(",") if n.strip()]
    result = bench_tracker(args.dets, args.fps, trackers, args.size, args.seconds, show=_show,
                           embed_dims=args.embed_dims)
    write_json(args.json, result)
    return 0


#: The scene kinds of ``bench mot`` (``stream/bench/mot.py``'s ``SCENE_KINDS``; named here so
#: that parsing the arguments does not load the benchmark and torch).
MOT_SCENE_KINDS = ("static", "moving", "crossings", "occlusions", "fast-pan", "shaky", "stop-go",
                   "crowd")


def run_mot(args: argparse.Namespace) -> int:
    from detstream.stream.bench.common import write_json
    from detstream.stream.bench.mot import bench_mot, print_mot

    if args.public is not None:
        return _run_mot_public(args)
    if args.tracker is not None or args.config is not None:
        raise UserInputError("--tracker and --config apply to --public sequences; the scenes "
                             "are tracked with every variant of bench mot")
    kinds = _kinds(args.kinds)
    report = bench_mot(args.model, args.backend, args.conf, args.scenes or 6, args.frames,
                       args.size, args.fps, progress=_log, kinds=kinds)
    print_mot(report)
    write_json(args.json, report)
    return 0


def _run_mot_public(args: argparse.Namespace) -> int:
    """``bench mot --public DIR``: the real sequences only."""
    from detstream.stream.bench.common import write_json
    from detstream.stream.bench.public import bench_public, print_public

    if args.scenes is not None:
        raise UserInputError("--public scores real sequences and renders no scenes; run bench "
                             "mot --scenes N on its own for those")
    report = bench_public(args.public, args.tracker or "botsort", args.config, progress=_log)
    print_public(report)
    write_json(args.json, report)
    return 0


def _kinds(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return MOT_SCENE_KINDS
    return tuple(k.strip() for k in text.split(",") if k.strip())


def _public_sequence(text: str) -> tuple[Path, float | None, tuple[int, int] | None]:
    """``DIR``, ``DIR:FPS`` or ``DIR:FPS:WxH`` → (folder, frame rate or None: seqinfo.ini's,
    frame size or None)."""
    from detstream.engines.data.synthetic.config import parse_size

    folder, rate, size = text, None, None
    if not Path(text).is_dir():
        folder, _, last = text.rpartition(":")
        if "x" in last.lower():  # DIR:FPS:WxH
            try:
                size = parse_size(last)
            except UserInputError:
                folder = ""
            folder, _, last = folder.rpartition(":")
        try:
            rate = float(last)
        except ValueError:
            rate = 0.0
    if not folder or (rate is not None and rate <= 0) \
            or (size is not None and min(size) <= 0) \
            or not (Path(folder) / "det.txt").is_file() \
            or not (Path(folder) / "gt.txt").is_file() \
            or (rate is None and not (Path(folder) / "seqinfo.ini").is_file()):
        raise UserInputError(f"--public {text!r}: give DIR, DIR:FPS or DIR:FPS:WxH, DIR "
                             "holding det.txt and gt.txt (MOTChallenge; without FPS, also "
                             "seqinfo.ini)")
    return Path(folder), rate, size


def run_tune(args: argparse.Namespace) -> int:
    from detstream.engines.data.synthetic.config import parse_size
    from detstream.stream.bench.common import write_json
    from detstream.stream.bench.mot import model_detector, scene_configs
    from detstream.stream.bench.tune import bench_tune, parse_candidates, print_tune

    if not args.param and not args.grid:
        raise UserInputError("give the candidates: --param NAME=V1,V2,... (or, with "
                             "--public-root, --grid NAME=V1,V2,...)")
    if args.public_root is None and args.grid:
        raise UserInputError("--grid chooses on real sequences: give --public-root DIR")
    if args.public_root is not None and args.public:
        raise UserInputError("give --public-root DIR (every sequence under it) or --public "
                             "DIR:FPS, not both")
    if args.public_root is None and not args.scenes and not args.public:
        raise UserInputError("nothing to tune on: give --scenes N, --public or --public-root")
    params = [parse_candidates(text) for text in args.param]
    grid = [parse_candidates(text, "--grid") for text in args.grid]
    public = [_public_sequence(text) for text in args.public]
    configs = scene_configs(args.scenes, args.frames, parse_size(args.size), 30.0,
                            kinds=_kinds(args.kinds)) if args.scenes else []
    detector = model_detector(args.model, args.backend, args.conf) \
        if args.model != "none" and configs else None
    if args.public_root is not None:
        from detstream.stream.bench.tune_public import print_tune_public, tune_public

        report = tune_public(args.public_root, configs, detector, params, grid, progress=_log)
        print_tune_public(report)
    else:
        report = bench_tune(configs, detector, params, public, progress=_log)
        print_tune(report)
    write_json(args.json, report)
    return 0


def run_soak(args: argparse.Namespace) -> int:
    from detstream.engines.paths import writable_dir
    from detstream.stream.bench.common import write_json
    from detstream.stream.bench.soak import bench_soak, print_soak
    from detstream.stream.session import RunConfig

    if args.json is not None:
        writable_dir(args.json.parent)
    if args.keep is not None:
        writable_dir(args.keep)
    config = RunConfig(source=args.source, model=args.model, weights=args.weights,
                       names=args.names, imgsz=args.imgsz, backend=args.backend,
                       cuda_graph=args.cuda_graph, tracker=_tracker(args.tracker))
    warmup = None if args.warmup_minutes is None else args.warmup_minutes * 60.0
    result = bench_soak(config, args.minutes, args.every, warmup, args.keep, _log)
    print_soak(result)
    write_json(args.json, result)
    return 0
