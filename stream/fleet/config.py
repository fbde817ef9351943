"""The cameras YAML of ``detstream fleet run``: which streams to run, with what, writing where.

Example::

    defaults:                      # optional: any stream field but name and uri
      model: default
      imgsz: 320
      tracker: bytetrack
      outputs: {json: "out/{name}.jsonl", mot: "out/{name}.txt"}
    streams:
      - name: gate
        uri: rtsp://10.0.0.5/stream
        fps: 25                    # frames/s the stream needs (default: the URI's, else 30)
        priority: 1                # placed first when capacity is short
        labels: {site: north}
        zone: [[0, 0], [640, 0], [640, 360]]
      - name: yard
        uri: synthetic://?seed=2&size=640x360&fps=10&frames=300
        outputs: {video: "out/yard.mp4", mot: null}   # adds a video, drops the MOT file
    workers:                       # optional (default: one per GPU, else one per CPU)
      - {name: cpu-0, cpus: 1, capacity_fps: 40}

A stream's ``outputs`` add to those under ``defaults`` (``null`` drops one). Relative output
paths and file sources are taken from the YAML file's folder. Every mistake
raises one :class:`UserInputError` line naming the field and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detstream.engines.errors import UserInputError
from detstream.stream.options import File, OptionError, options_of, value_of, with_values
from detstream.stream.run_config import RUN_OPTIONS, RunConfig

#: Frame rate assumed for a stream that declares none and whose URI tells none.
DEFAULT_FPS = 30.0
OUTPUT_KINDS = ("video", "json", "mot")
NAME_FIELD = "{name}"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: The run options a stream (or ``defaults``) can set, from their one declaration.
FLEET_OPTIONS = options_of(RunConfig, "fleet")
_STREAM_KEYS = ("name", "uri", *FLEET_OPTIONS, "fps", "priority", "gpu", "outputs", "labels")
_DEFAULT_KEYS = tuple(k for k in _STREAM_KEYS if k not in ("name", "uri"))
_WORKER_KEYS = ("name", "cpus", "gpus", "capacity_fps")
_TOP_KEYS = ("defaults", "streams", "workers")


@dataclass(frozen=True)
class StreamOutputs:
    """Files one stream writes (``None``: not written); absolute paths."""

    video: Path | None = None
    json: Path | None = None
    mot: Path | None = None

    def paths(self) -> list[Path]:
        return [p for p in (self.video, self.json, self.mot) if p is not None]


@dataclass(frozen=True)
class StreamSpec:
    """One camera or file of the fleet.

    Attributes:
        name: unique name (letters, digits, ``_.-``); output paths use it as ``{name}``.
        uri: the source, in ``detstream run``'s grammar.
        outputs: the files it writes.
        run: its run options (:data:`FLEET_OPTIONS`: model, input size, backend, tracker,
            confidence, zone), read as attributes too (``spec.model``); streams with the same
            model, input size and backend share a worker's model.
        fps: frames/s the stream needs from its worker (what placement counts).
        priority: larger is placed first.
        gpu: the stream must run on a worker with a GPU.
        labels: free key/value tags carried into its statistics.
    """

    name: str
    uri: str
    outputs: StreamOutputs
    run: RunConfig = field(default_factory=RunConfig)
    fps: float = DEFAULT_FPS
    priority: int = 0
    gpu: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not fields; never for ``run`` itself (unpickling
        # looks names up before the fields exist).
        if name in FLEET_OPTIONS and "run" in self.__dict__:
            return value_of(self.run, name)
        raise AttributeError(name)

    @property
    def model_key(self) -> str:
        """What decides the loaded model: streams with one key can share an engine call."""
        return f"{self.model}@{self.imgsz or 'native'}/{self.backend}"


@dataclass(frozen=True)
class WorkerSpec:
    """One inference service: a Ray actor with these resources.

    ``capacity_fps`` is the frames/s it sustains; ``None`` has the worker measure it.
    """

    name: str
    cpus: float = 1.0
    gpus: float = 0.0
    capacity_fps: float | None = None
    node: str | None = None  # a Ray node id it must run on (workers derived per node)


@dataclass(frozen=True)
class FleetConfig:
    """A parsed cameras YAML; ``workers`` empty: derived from the cluster."""

    path: Path
    streams: tuple[StreamSpec, ...]
    workers: tuple[WorkerSpec, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)


class _Reader:
    """Checks one YAML file's values; every error names the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.parent

    def fail(self, where: str, problem: str, fix: str) -> UserInputError:
        return UserInputError(f"{self.path}: {where}: {problem}; {fix}")

    def mapping(self, value: Any, where: str, keys: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}",
                            f"write it as 'key: value' lines ({', '.join(keys)})")
        unknown = [str(k) for k in value if k not in keys]
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r}",
                            f"use only {', '.join(keys)}")
        return value

    def number(self, value: Any, where: str, minimum: float = 0.0,
               whole: bool = False) -> float:
        kinds = (int,) if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
            kind = "a whole number" if whole else "a number"
            raise self.fail(where, f"expected {kind} of at least {minimum:g}, got {value!r}",
                            f"give {kind} like {max(minimum, 1):g}")
        return value

    def positive(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(where, f"expected a number above 0, got {value!r}",
                            "give a positive number like 25")
        return float(value)

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise self.fail(where, f"expected text, got {value!r}", "give a non-empty string")
        return str(value).strip()

    def file(self, value: Any, where: str, name: str) -> Path:
        text = self.text(value, where).replace(NAME_FIELD, name)
        path = Path(text).expanduser()
        return path if path.is_absolute() else (self.root / path).resolve()

    def uri(self, value: Any, where: str) -> str:
        text = self.text(value, where)
        if "://" in text or text.isdigit() or text.startswith("/"):
            return text
        return str((self.root / text).resolve())  # a file, folder or glob beside the YAML

    def outputs(self, value: Any, where: str, name: str) -> StreamOutputs:
        if value is None:
            return StreamOutputs()
        value = self.mapping(value, where, OUTPUT_KINDS)
        return StreamOutputs(**{kind: self.file(v, f"{where}.{kind}", name)
                                for kind, v in value.items() if v is not None})

    def option(self, name: str, value: Any, where: str) -> Any:
        """A run option's value, checked by its declaration (the same words as on the
        command line)."""
        try:
            return RUN_OPTIONS[name].kind.check(value)
        except OptionError as exc:
            raise UserInputError(f"{self.path}: {where}: {exc}") from None

    def labels(self, value: Any, where: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {value!r}",
                            "write labels as 'key: value' lines, e.g. {site: north}")
        return {str(k): str(v) for k, v in value.items()}


def _uri_fps(uri: str) -> float | None:
    """The frame rate a ``synthetic://`` URI declares (None for other sources)."""
    if not uri.startswith("synthetic://"):
        return None
    from detstream.engines.data.synthetic import parse_synthetic_uri

    scene, _ = parse_synthetic_uri(uri)
    return float(scene.fps)


def _stream(reader: _Reader, raw: Any, where: str, defaults: dict) -> StreamSpec:
    raw = reader.mapping(raw, where, _STREAM_KEYS)
    if "name" not in raw or "uri" not in raw:
        missing = "name" if "name" not in raw else "uri"
        raise reader.fail(where, f"no {missing}", "give every stream a name and a uri")
    name = reader.text(raw["name"], f"{where}.name")
    if not _NAME.fullmatch(name):
        raise reader.fail(f"{where}.name", f"{name!r} is not a usable name",
                          "use letters, digits, '_', '.' and '-' (it becomes part of file "
                          "names)")
    merged = {**defaults, **raw}
    at = f"{where} ({name})"
    uri = reader.uri(merged["uri"], f"{at}.uri")
    run = {}
    for key in FLEET_OPTIONS:
        if key not in merged:
            continue
        value = merged[key]
        if isinstance(RUN_OPTIONS[key].kind, File) and value is not None:
            # paths (rules, heatmap, clips) as the outputs': {name}, from the YAML's folder
            value = str(reader.file(value, f"{at}.{key}", name))
        run[key] = reader.option(key, value, f"{at}.{key}")
    fps = merged.get("fps")
    fps = reader.positive(fps, f"{at}.fps") if fps is not None else (_uri_fps(uri)
                                                                    or DEFAULT_FPS)
    # outputs merge per kind: a stream adds to the defaults' files (null drops one)
    files = {**reader.mapping(defaults.get("outputs") or {}, "defaults.outputs", OUTPUT_KINDS),
             **reader.mapping(raw.get("outputs") or {}, f"{at}.outputs", OUTPUT_KINDS)}
    outputs = reader.outputs(files, f"{at}.outputs", name)
    if not outputs.paths():
        raise reader.fail(f"{at}.outputs", "the stream writes nothing",
                          "give outputs: {json: FILE, mot: FILE, video: FILE.mp4} (here or "
                          "under defaults, with {name} in the file names)")
    if outputs.video is not None:
        reader.option("output", outputs.video, f"{at}.outputs.video")
    return StreamSpec(
        name=name, uri=uri, outputs=outputs, run=with_values(RunConfig(source=uri), **run),
        fps=fps, priority=int(reader.number(merged.get("priority", 0), f"{at}.priority",
                                            minimum=-1e9, whole=True)),
        gpu=bool(merged.get("gpu", False)), labels=reader.labels(merged.get("labels"),
                                                                f"{at}.labels"))


def _worker(reader: _Reader, raw: Any, where: str, index: int) -> WorkerSpec:
    raw = reader.mapping(raw, where, _WORKER_KEYS)
    name = reader.text(raw.get("name", f"worker-{index}"), f"{where}.name")
    cpus = reader.positive(raw.get("cpus", 1), f"{where}.cpus")
    gpus = reader.number(raw.get("gpus", 0), f"{where}.gpus")
    capacity = raw.get("capacity_fps")
    return WorkerSpec(name=name, cpus=cpus, gpus=float(gpus),
                      capacity_fps=None if capacity is None else reader.positive(
                          capacity, f"{where}.capacity_fps"))


def _unique(reader: _Reader, names: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise reader.fail(where, f"two {what} are named {name!r}",
                              f"give every {what[:-1]} its own name")
        seen.add(name)


def parse_fleet(data: Any, path: Path) -> FleetConfig:
    """Check a loaded cameras YAML (``data``, read from ``path``) and build the config."""
    reader = _Reader(path)
    top = reader.mapping(data if data is not None else {}, "top level", _TOP_KEYS)
    defaults = reader.mapping(top.get("defaults") or {}, "defaults", _DEFAULT_KEYS)
    raw_streams = top.get("streams")
    if not isinstance(raw_streams, list) or not raw_streams:
        raise reader.fail("streams", "no stream listed",
                          "add 'streams:' with one '- name: ..., uri: ...' entry per camera")
    streams = tuple(_stream(reader, raw, f"streams[{i}]", defaults)
                    for i, raw in enumerate(raw_streams))
    _unique(reader, [s.name for s in streams], "streams", "streams")
    writers: dict[Path, str] = {}
    for stream in streams:
        for target in stream.outputs.paths():
            if target in writers:
                raise reader.fail(f"streams ({stream.name}).outputs",
                                  f"{target} is written by {writers[target]!r} too",
                                  f"put {NAME_FIELD} in the file name")
            writers[target] = stream.name
    raw_workers = top.get("workers") or []
    if not isinstance(raw_workers, list):
        raise reader.fail("workers", f"expected a list, got {type(raw_workers).__name__}",
                          "write one '- name: ..., cpus: ...' entry per worker")
    workers = tuple(_worker(reader, raw, f"workers[{i}]", i)
                    for i, raw in enumerate(raw_workers))
    _unique(reader, [w.name for w in workers], "workers", "workers")
    return FleetConfig(path=path, streams=streams, workers=workers, defaults=defaults)


def parse_stream(data: Any, config: FleetConfig, taken: Mapping[Path, str] | None = None
                 ) -> StreamSpec:
    """One stream added to a running fleet: ``data`` in the YAML's stream grammar, with the
    fleet's defaults and paths relative to its YAML file. ``taken`` maps the output files of
    the streams already there to their names (two streams never write one file)."""
    reader = _Reader(config.path)
    spec = _stream(reader, data, "new stream", dict(config.defaults))
    for target in spec.outputs.paths():
        if taken and target in taken:
            raise reader.fail(f"new stream ({spec.name}).outputs",
                              f"{target} is written by {taken[target]!r} already",
                              f"put {NAME_FIELD} in the file name")
    return spec


def parse_worker(data: Any, config: FleetConfig, index: int) -> WorkerSpec:
    """One worker added to a running fleet: ``data`` in the YAML's worker grammar."""
    return _worker(_Reader(config.path), data, "new worker", index)


def load_fleet(path: str | Path) -> FleetConfig:
    """Read and check the cameras YAML at ``path``.

    Raises:
        UserInputError: the file cannot be read, is not YAML, or a field is wrong.
    """
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"--sources {path}: cannot read it ({exc}); give the cameras "
                             "YAML file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UserInputError(f"{path}: not valid YAML{line}; check the indentation and "
                             "quotes there") from None
    return parse_fleet(data, path)
