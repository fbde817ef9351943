"""What one run depends on: :class:`RunConfig`, every field a declared option
(:mod:`detstream.stream.options`). ``detstream run``'s flags, the demo's settings, the fleet's
cameras YAML, the benchmarks' shared flags and ``detstream.track(**options)`` all derive from
these declarations, so each option's name, type, default, range and help live here alone.

Light to import (no torch): the command line builds its parsers from it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from detstream.engines.data.video import DECODERS, DEFAULT_PRESET, VIDEO_PRESETS
from detstream.engines.errors import UserInputError
from detstream.engines.process.thresholds import DEFAULT_CONF, DEFAULT_IOU
from detstream.stream.draw import DrawConfig
from detstream.stream.options import (
    Areas,
    Choice,
    Control,
    File,
    Lines,
    MqttTopic,
    Names,
    Number,
    Polygon,
    Switch,
    Text,
    Url,
    check_fields,
    option,
    options_of,
)
from detstream.stream.track import TRACKERS

#: What ``detstream run`` shows with no arguments: 10 s of a busy, panning synthetic scene at
#: 1280x720 whose objects (48 px and up) are at least 15 px in the default model's 416 input,
#: above the 12 px floor of the images it was trained on.
DEFAULT_SOURCE = ("synthetic://?seed=0&size=1280x720&fps=30&frames=300&camera_motion=1"
                  "&objects=10&min_size=48&max_size_frac=0.35")

#: Where a model can run (``auto``: tensorrt, then torch on CUDA, then onnxruntime on the CPU).
BACKENDS = ("auto", "tensorrt", "torch", "onnxruntime")
#: The trackers, and the word for none.
TRACKER_CHOICES = (*sorted(TRACKERS), "none")
#: The containers an annotated video is written in.
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")

MODEL_HELP = ("a model name (default, yolox-nano, ...: detstream models lists them), a "
              "checkpoint .safetensors, an .onnx file or a cached .engine")
_VIDEO = File(suffixes=VIDEO_SUFFIXES, suffix_hint="a video file", optional=True)
_OUT = File(optional=True)
_FRACTION = Number(minimum=0, maximum=1)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; each field is checked when the record is made (a bad
    value raises one :class:`UserInputError` naming the field).

    Fields that are not shown on the command line as such: ``source`` (``--source``, which
    may be repeated for several streams), ``max_batch`` (the largest batch the model must
    accept when several streams share calls), ``journal`` (where the progress of
    ``save_json`` and ``save_mot`` is recorded after every frame; ``{stream}`` becomes the
    stream number) and ``draw`` (its fields are options of their own).
    """

    source: str = option(DEFAULT_SOURCE, Text(), "input URI (see detstream.stream.sources)")
    model: str = option("default", Text(), MODEL_HELP, "run", "demo", "page", "fleet", "bench")
    weights: Path | None = option(None, File(optional=True),
                                  "a file you already have for a named model (no download)",
                                  "run", "bench", metavar="PATH")
    names: Path | None = option(None, File(exists=True, optional=True),
                                "class names for an ONNX file without them (one per line, or "
                                "a YAML/JSON list)", "run", "page", "bench")
    backend: str = option("auto", Choice(BACKENDS, noun="backend"),
                          "where the model runs (auto: tensorrt, then torch on CUDA, then "
                          "onnxruntime on the CPU)", "run", "demo", "page", "fleet", "bench")
    device: str | None = option(None, Text(optional=True),
                                "cpu or cuda[:N] (default: the best here)", "run")
    imgsz: int | None = option(None, Number(minimum=32, maximum=8192, whole=True,
                                            optional=True),
                               "square model input size (default: the model's own)", "run",
                               "demo", "page", "fleet", "bench", metavar="PIXELS")
    threads: int | None = option(None, Number(minimum=1, maximum=1024, whole=True,
                                              optional=True),
                                 "inference threads on the CPU (default: chosen for the "
                                 "machine and the source)", "run", metavar="N")
    cuda_graph: bool = option(False, Switch(),
                              "replay the model from CUDA graphs captured when it opens "
                              "(torch and tensorrt on CUDA; 4-5x faster inference at batch 1 "
                              "on an H200)", "run", "bench")
    int8: bool | None = option(None, Switch(optional=True),
                               "onnxruntime on the CPU: run the INT8 copy of an ONNX model "
                               "(NAME.int8.onnx beside NAME.onnx, from detstream export "
                               "--int8); --no-int8: the FP32 file (default: INT8 where it "
                               "passed its accuracy check and measures faster on this CPU)",
                               "run")
    max_batch: int = option(1, Number(minimum=1, maximum=256, whole=True),
                            "the largest batch the model must accept")
    conf: float = option(DEFAULT_CONF, _FRACTION, "detection confidence", "run", "demo",
                         "page", "fleet", control=Control(0.05, 0.95, 0.05))
    iou: float = option(DEFAULT_IOU, _FRACTION, "NMS IoU", "run", "page",
                        control=Control(0.1, 0.9, 0.05))
    classes: tuple[str, ...] | None = option(None, Names(optional=True),
                                             "keep only these classes (names or ids)", "run",
                                             "page")
    zone: tuple[tuple[float, float], ...] | None = option(
        None, Polygon(optional=True), "keep only objects standing in this polygon (box bottom "
        "centre, pixels); its outline is drawn", "run", "fleet")
    lines: tuple | None = option(
        None, Lines(optional=True), "counting lines: crossings of each named line per direction "
        "(in: from its left to its right, walking from its first point to its second) and "
        "class, once per track; drawn with their counts", "run", "fleet", "page", flag="--line")
    areas: tuple | None = option(
        None, Areas(optional=True), "watched areas: occupancy, entries, exits and dwell time "
        "of the tracks standing in each named polygon (unlike --zone, nothing is dropped)",
        "run", "fleet", "page", flag="--area")
    rules: Path | None = option(None, File(exists=True, suffixes=(".yaml", ".yml", ".json"),
                                           suffix_hint="a YAML rules file", optional=True),
                                "a YAML file of counting lines and watched areas ('lines:', "
                                "'areas:' and 'dwell:', as the options write them or as "
                                "mappings with classes, anchor and an area's own dwell); "
                                "--line and --area add to them", "run", "fleet")
    dwell: float | None = option(None, Number(minimum=0, above=True, optional=True),
                                 "seconds a track may stay in a watched area before it raises "
                                 "dwell_exceeded (loitering; an area's own dwell comes first)",
                                 "run", "fleet", "page", metavar="SECONDS")
    heatmap: Path | None = option(None, File(suffixes=(".png",), suffix_hint="a PNG image",
                                             optional=True),
                                  "where the tracked objects stood over the run (their box "
                                  "bottom centres): drawn over the video, saved over the last "
                                  "frame as this PNG", "run", "fleet")
    heatmap_half_life: float | None = option(None, Number(minimum=0, above=True, optional=True),
                                             "the heatmap fades: its counts halve every "
                                             "SECONDS (default: it keeps the whole run)", "run",
                                             "fleet", metavar="SECONDS")
    webhook: str | None = option(None, Url(optional=True),
                                 "POST every line crossing, area entry and exit and loitering "
                                 "as JSON to this address, in order, retried until it is "
                                 "delivered (the run never waits for it)", "run", "fleet",
                                 metavar="URL")
    mqtt: str | None = option(None, MqttTopic(optional=True),
                              "publish every line crossing, area entry and exit and loitering "
                              "as JSON on this MQTT broker's topic (QoS 1), in order, retried "
                              "until the broker takes it", "run", "fleet",
                              metavar="HOST[:PORT]/TOPIC")
    alert_cooldown: float = option(5.0, Number(minimum=0), "seconds before the same rule, "
                                   "track and kind of event (and direction of a crossing) "
                                   "alerts again", "run", "fleet",
                                   metavar="SECONDS")
    clips: Path | None = option(None, File(optional=True),
                                "a folder for event clips: an H.264 MP4 of the drawn video "
                                "around each line crossing, area entry and exit and loitering, "
                                "from --pre seconds before it to --post after, named by time, "
                                "rule and track", "run", "fleet", metavar="DIR")
    clip_pre: float = option(5.0, Number(minimum=0, maximum=60),
                             "seconds of video before each event in its clip (from the "
                             "keyframe at or before then: one a second)", "run", "fleet",
                             flag="--pre", metavar="SECONDS")
    clip_post: float = option(5.0, Number(minimum=0, maximum=600),
                              "seconds of video after each event in its clip (a later event "
                              "of the same track extends it)", "run", "fleet", flag="--post",
                              metavar="SECONDS")
    tracker: str | None = option("botsort", Choice(TRACKER_CHOICES, noun="tracker",
                                                   none="none", optional=True),
                                 "the tracker (none: detections only)", "run", "demo", "page",
                                 "fleet", "bench")
    tracker_options: Path | None = option(None, File(exists=True, optional=True),
                                          "YAML of tracker parameters", "run",
                                          flag="--tracker-config")
    output: Path | None = option(None, _VIDEO, "annotated H.264 video", "run")
    save_json: Path | None = option(None, _OUT, "JSON Lines per frame", "run")
    save_mot: Path | None = option(None, _OUT, "MOTChallenge tracks", "run")
    stats_json: Path | None = option(None, _OUT, "run metrics as JSON", "run")
    video_preset: str = option(DEFAULT_PRESET, Choice(VIDEO_PRESETS, noun="x264 preset"),
                               "x264 speed of the annotated video (at 1080p ultrafast takes "
                               "half the CPU of veryfast for a file three times larger)", "run")
    decoder: str = option("auto", Choice(DECODERS, noun="decoder"),
                          "video decoding: auto (NVIDIA's NVDEC where there is one, else the "
                          "CPU), software or nvdec", "run")
    show: bool = option(False, Switch(), "show a window (q or Esc quits)", "run")
    max_frames: int | None = option(None, Number(minimum=1, whole=True, optional=True),
                                    "stop after this many frames", "run", metavar="N")
    detect_every: int = option(0, Number(minimum=0, maximum=1000, whole=True),
                               "run the detector on every K-th frame and track in between; "
                               "0: every frame of a file, and on a live source as often as "
                               "inference allows while every frame is tracked and shown at "
                               "the camera's rate", "run", "page", metavar="K",
                               control=Control(0, 10, 1))
    motion_gate: bool = option(False, Switch(),
                               "live sources on a static camera: run the detector only when "
                               "it pays (new motion, moving or stale tracks, at least every "
                               "5 s); the gate opens by itself while the camera moves",
                               "run", "page", "fleet", "bench")
    live: bool | None = option(None, Switch(optional=True),
                               "treat the source as live (paced, newest frame wins); "
                               "--no-live: process every frame of the source, whatever it is",
                               "run")
    drop: bool = option(True, Switch(),
                        "live sources: queue frames instead of dropping old ones; the queue "
                        "holds at most 64 frames, then the reader waits for room "
                        "(back-pressure: nothing is dropped, latency grows up to 64 frames "
                        "and a camera or server may discard what it cannot send)", "run")
    stall_timeout: float = option(5.0, Number(minimum=0, above=True),
                                  "network streams: reconnect when no data came for this long",
                                  "run", metavar="SECONDS")
    loop: int = option(0, Number(minimum=-1, whole=True, rule="0 or more, or -1 (forever)"),
                       "files and folders: play N more times after the first (-1: forever, "
                       "until Ctrl-C)", "run", metavar="N")
    draw: DrawConfig = option(None, Text(), "drawing settings", factory=DrawConfig)
    start_frame: int = option(0, Number(minimum=0, whole=True),
                              "file-like sources begin at this frame index (the frames before "
                              "it are read and discarded; every frame keeps its own index and "
                              "time); live sources number their frames from it", "run",
                              metavar="N")
    journal: Path | None = option(None, _OUT, "the progress journal of the file outputs")
    resume: bool = option(False, Switch(),
                          "continue an interrupted run with the same command: --save-json "
                          "and --save-mot go on from their last whole frame (every frame "
                          "once), --output continues in NAME.resumed-N.mp4; every run with "
                          "file outputs keeps its progress in FIRST_OUTPUT.progress", "run")

    def __post_init__(self) -> None:
        check_fields(self)
        if not isinstance(self.draw, DrawConfig):
            raise UserInputError(f"draw: expected a DrawConfig, got {self.draw!r}")

    @classmethod
    def from_options(cls, **options: Any) -> RunConfig:
        """A config from keyword options (``detstream.track``'s): an unknown name is one
        clear error listing the known ones."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UserInputError(f"unknown option {unknown[0]!r}; options are "
                                 f"{', '.join(sorted(known))}")
        return cls(**options)


#: Every run option by name (nested ``draw`` fields included).
RUN_OPTIONS = options_of(RunConfig)
