"""Multi-object trackers: ByteTrack and BoT-SORT-style ByteTrack with camera-motion compensation.

``make_tracker("botsort", fps=25)`` builds one tracker for one stream; parameters come from
:class:`~detstream.stream.track.bytetrack.ByteTrackConfig` defaults, the tracker's own defaults,
and an
optional YAML file or dict of overrides.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from detstream.engines.errors import UserInputError
from detstream.stream.track.base import Tracker
from detstream.stream.track.bytetrack import ByteTrack, ByteTrackConfig
from detstream.stream.track.motion import CameraMotion
from detstream.stream.track.scenecut import SceneCutDetector

#: Per-tracker defaults on top of ByteTrackConfig's.
TRACKERS: dict[str, dict[str, Any]] = {
    "bytetrack": {"camera_motion": False},
    # BoT-SORT's Kalman state (width and height, not aspect) and its camera-motion compensation.
    "botsort": {"camera_motion": True, "state": "xywh"},
}
EXTRA_KEYS = {"camera_motion", "scene_cut"}


def load_tracker_options(source: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    """Overrides from a YAML file (a mapping of parameter → value) or a dict."""
    if source is None:
        return {}
    if isinstance(source, dict):
        return dict(source)
    import yaml

    path = Path(source)
    if not path.is_file():
        raise UserInputError(f"tracker config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise UserInputError(f"tracker config {path} is not a text file; pass a YAML "
                             "mapping of parameter: value") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise UserInputError(f"tracker config {path} is not valid YAML ({first})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"tracker config {path} must be a mapping of parameter: value")
    return data


def _typed(key: str, value: Any, kind: type) -> Any:
    """``value`` as the parameter's type, refusing what would only convert by accident
    (``"no"`` as a boolean, ``2.5`` as a count, ``true`` as a number)."""
    if kind is bool:
        if not isinstance(value, bool):
            raise UserInputError(f"tracker parameter {key} must be true or false, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise UserInputError(f"tracker parameter {key} must be text, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserInputError(f"tracker parameter {key} must be a number, got {value!r}")
    if kind is int and not float(value).is_integer():
        raise UserInputError(f"tracker parameter {key} must be a whole number, got {value!r}")
    return kind(value)


def make_tracker(name: str, fps: float = 30.0,
                 options: str | Path | dict[str, Any] | None = None,
                 first_id: int = 1, frame_size: tuple[int, int] | None = None) -> Tracker:
    """A fresh tracker for one stream.

    Args:
        name: ``bytetrack`` or ``botsort``.
        fps: the stream's real frame rate (lost-track buffers are in seconds).
        options: overrides (YAML path or dict): any :class:`ByteTrackConfig` field, plus
            ``camera_motion`` and ``scene_cut`` (booleans).
        first_id: the first track id (a resumed run continues above the ids written).
        frame_size: ``(width, height)`` for detections tracked without their frames (the
            frames tell it otherwise).
    """
    if name not in TRACKERS:
        raise UserInputError(f"unknown tracker {name!r}; choose one of "
                             f"{', '.join(TRACKERS)} or none")
    values = {"scene_cut": True, **TRACKERS[name], **load_tracker_options(options)}
    known = {f.name for f in fields(ByteTrackConfig)} | EXTRA_KEYS
    unknown = sorted(str(key) for key in set(values) - known)
    if unknown:
        raise UserInputError(f"unknown tracker parameter(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
    defaults = {**ByteTrackConfig().to_dict(), "camera_motion": False, "scene_cut": True}
    typed = {key: _typed(key, value, type(defaults[key])) for key, value in values.items()}
    camera = typed.pop("camera_motion")
    cuts = typed.pop("scene_cut")
    config = replace(ByteTrackConfig(), **typed)
    tracker = ByteTrack(config, fps, motion=CameraMotion() if camera else None,
                        cuts=SceneCutDetector() if cuts else None, first_id=first_id,
                        frame_size=frame_size)
    tracker.name = name
    return tracker


__all__ = ["TRACKERS", "ByteTrack", "ByteTrackConfig", "CameraMotion", "SceneCutDetector",
           "Tracker", "make_tracker"]
