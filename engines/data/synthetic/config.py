"""Scene configuration for the synthetic world, and the ``synthetic://`` URI that names it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from detstream.engines.errors import UserInputError

#: The target classes, told apart by shape (colour and texture are random for every class).
CLASS_NAMES: tuple[str, ...] = ("circle", "triangle", "square", "star")

#: The scene's difficulty factors and their largest values (see :class:`SceneConfig`).
FACTORS: dict[str, float] = {"pan_speed": 10.0, "shake": 10.0, "occluder_width": 8.0,
                             "stops": 10.0, "crossings": 10.0}

#: Shapes that appear in scenes but are never labelled: the detector must learn to ignore them.
DISTRACTOR_NAMES: tuple[str, ...] = ("ring", "crescent", "bar", "chevron")


@dataclass(frozen=True)
class SceneConfig:
    """Everything that defines a synthetic scene; the same config always renders the same scene.

    Attributes:
        width, height: frame size in pixels.
        fps: frame rate; motion is simulated in seconds, so a scene looks the same at any rate.
        frames: number of frames, or ``None`` for an endless scene (a live source).
        seed: the scene's seed.
        objects: mean number of target objects in view at once.
        camera_motion: pan and hand-held jitter of the camera (global motion).
        motion_blur: blur each object along its on-screen velocity.
        noise: sensor noise (its strength is drawn per scene).
        lighting: global brightness changes (slow drifts and sudden steps).
        distractors: clutter and moving shapes that are not target classes.
        occluders: foreground posts that fully hide objects passing behind them.
        min_size: smallest object extent in pixels.
        max_size_frac: largest object extent as a fraction of the frame height.
        pan_speed: how fast the camera pans, times the usual (with ``camera_motion``; fast
            pans also reverse suddenly at the edges of the world).
        shake: hand-held jitter of the camera, times the usual (with ``camera_motion``).
        occluder_width: width of the foreground posts, times the usual (long occlusions).
        stops: each object's chance of stopping now and then, times the usual (at most 1).
        crossings: the share of new objects that enter as a pair timed to cross, times the
            usual (at most 1).
        quiet: seconds of empty view between waves of objects (0: the usual steady traffic).
            With ``quiet`` > 0, objects (and moving distractors) arrive for ``wave`` seconds,
            then nothing new arrives and those in view leave; once the view is empty it stays
            so for ``quiet`` seconds (lighting and noise go on), then the next wave comes.
            The scenes of a static camera that is mostly watching nothing.
        wave: seconds of arrivals in each wave (only with ``quiet`` > 0).

    The five factors above leave the scene's random draws alone, so a factor of 1 renders
    exactly the scene it did before they existed; ``quiet=0`` likewise leaves it unchanged.
    """

    width: int = 1280
    height: int = 720
    fps: float = 30.0
    frames: int | None = 300
    seed: int = 0
    objects: int = 8
    camera_motion: bool = False
    motion_blur: bool = True
    noise: bool = True
    lighting: bool = True
    distractors: bool = True
    occluders: bool = True
    min_size: float = 12.0
    max_size_frac: float = 0.25
    pan_speed: float = 1.0
    shake: float = 1.0
    occluder_width: float = 1.0
    stops: float = 1.0
    crossings: float = 1.0
    quiet: float = 0.0
    wave: float = 10.0

    def __post_init__(self) -> None:
        check_frame_size(self.width, self.height)
        if not 1.0 <= self.fps <= 240.0:
            raise UserInputError(f"fps must be between 1 and 240, got {self.fps:g}")
        if self.frames is not None and self.frames < 1:
            raise UserInputError(f"frames must be a positive number, got {self.frames}")
        if not 0 <= self.objects <= 200:
            raise UserInputError(f"objects must be between 0 and 200, got {self.objects}")
        if self.seed < 0:
            raise UserInputError(f"seed must be zero or positive, got {self.seed}")
        for name, most in FACTORS.items():
            value = getattr(self, name)
            if not 0.0 <= value <= most:
                raise UserInputError(f"{name} must be between 0 and {most:g}, got {value:g}")
        if not 0.0 <= self.quiet <= 3600.0:
            raise UserInputError(f"quiet must be between 0 and 3600 seconds, got {self.quiet:g}")
        if not 1.0 <= self.wave <= 3600.0:
            raise UserInputError(f"wave must be between 1 and 3600 seconds, got {self.wave:g}")
        if not 4 <= self.min_size < self.max_size_frac * self.height:
            raise UserInputError(
                f"min_size {self.min_size:g} px must be at least 4 and below the largest size "
                f"({self.max_size_frac:g} x height = {self.max_size_frac * self.height:g} px)"
            )

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    @property
    def max_size(self) -> float:
        return self.max_size_frac * self.height

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_changes(self, **changes: Any) -> SceneConfig:
        return replace(self, **changes)


def check_frame_size(width: int, height: int) -> None:
    """Refuse frames smaller than 64x64 or larger than 8K (7680x4320)."""
    if width < 64 or height < 64:
        raise UserInputError(f"frame size {width}x{height} is too small; use at least 64x64")
    if width > 7680 or height > 4320:
        raise UserInputError(f"frame size {width}x{height} is too large; use at most 7680x4320")


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``1280x720``) into ``(width, height)``."""
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UserInputError(f"size {text!r} is not WIDTHxHEIGHT; write it like 1280x720")
    return int(parts[0]), int(parts[1])


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(key: str, value: str) -> bool:
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise UserInputError(f"synthetic:// parameter {key}={value!r} must be 0 or 1")


def parse_synthetic_uri(uri: str) -> tuple[SceneConfig, bool]:
    """Parse ``synthetic://?seed=S&size=WxH&fps=F&frames=N&live=1`` into a config and a live flag.

    Every parameter is optional; ``frames=0`` (or omitted with ``live=1``) means endless. Boolean
    scene switches (``camera_motion``, ``noise``, ...) and ``objects`` are accepted too.

    Returns:
        ``(config, live)`` where ``live`` asks the source to pace frames in real time.
    """
    parts = urlsplit(uri)
    if parts.scheme != "synthetic":
        raise UserInputError(f"{uri!r} is not a synthetic:// URI")
    known = {f.name for f in fields(SceneConfig)}
    values: dict[str, Any] = {}
    live = False
    frames_given = False
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        key = key.replace("-", "_")
        try:
            if key == "live":
                live = _parse_bool(key, value)
            elif key == "size":
                values["width"], values["height"] = parse_size(value)
            elif key == "frames":
                frames_given = True
                values["frames"] = int(value) or None
            elif key in ("seed", "objects", "width", "height"):
                values[key] = int(value)
            elif key in ("fps", "min_size", "max_size_frac", "quiet", "wave", *FACTORS):
                values[key] = float(value)
            elif key in known:
                values[key] = _parse_bool(key, value)
            else:
                options = ", ".join(sorted(known - {"width", "height"} | {"size", "live"}))
                raise UserInputError(
                    f"synthetic:// has no parameter {key!r}; known parameters: {options}"
                )
        except ValueError as exc:
            if isinstance(exc, UserInputError):
                raise
            raise UserInputError(
                f"synthetic:// parameter {key}={value!r} is not a number") from None
    if live and not frames_given:
        values["frames"] = None
    return SceneConfig(**values), live
