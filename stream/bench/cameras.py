"""The synthetic cameras of the live benchmarks (``bench live``, ``bench multistream --live``),
and the URI edits that turn a synthetic scene into a paced camera or into the same frames read
as a file. Light (no torch): the jobs check their arguments with it before any work.

A camera is the scene ``detstream run`` shows by default (:data:`DEFAULT_SOURCE`: ten objects,
up to 0.35 of the frame height) at any size and frame rate, with the objects' smallest size
scaled with the width (48 px at 1280 wide), so that they are at least 15 px in the default
model's 416 input, above the smallest objects it was trained on, whatever the camera's size.
A scene kind (:data:`SCENE_KINDS`: ``moving`` pans and shakes, ``static`` stands still) and
any ``synthetic://`` parameters (``quiet=30`` ...) change it.
"""

from __future__ import annotations

import argparse
from urllib.parse import parse_qsl, urlencode, urlsplit

from detstream.engines.data.synthetic.config import parse_synthetic_uri
from detstream.engines.errors import UserInputError
from detstream.stream.bench.scene_kinds import SCENE_KINDS

#: The camera's scene before its size, kind and extra parameters (see the module doc).
CAMERA_SCENE = {"objects": 10, "max_size_frac": 0.35}
#: The smallest object at 1280 px wide; scaled with the camera's width.
MIN_SIZE_AT_1280 = 48.0
#: The kind a camera is unless told (the product's default scene pans).
DEFAULT_KIND = "moving"
#: How ``bench multistream --live`` feeds its synthetic cameras to the pipeline, the default
#: first: recorded to H.264 and played live, or rendered as they play
#: (:mod:`~detstream.stream.bench.multistream`).
FEEDS = ("h264", "render")


def _word(value: object) -> str:
    """A parameter value as a ``synthetic://`` query writes it (switches as 0 or 1)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return f"{value:g}" if isinstance(value, float) else str(value)


def scene_params(text: str) -> dict[str, str]:
    """``quiet=30&camera_motion=0`` (or with commas): ``synthetic://`` parameters, checked.

    Raises:
        UserInputError: not ``KEY=VALUE`` pairs, or a parameter the synthetic world lacks.
    """
    text = text.strip().lstrip("?")
    pairs = parse_qsl(text.replace(",", "&"), keep_blank_values=True)
    if text and (not pairs or any(not key or value == "" for key, value in pairs)):
        raise UserInputError(f"scene parameters {text!r} are not KEY=VALUE pairs; write them "
                             "like camera_motion=0&quiet=30")
    params = {key.replace("-", "_"): value for key, value in pairs}
    parse_synthetic_uri("synthetic://?" + urlencode(params))  # names a parameter it lacks
    return params


def scene_argument(text: str) -> dict[str, str]:
    """:func:`scene_params` as an argparse ``type=`` (a bad value is argparse's one line)."""
    try:
        return scene_params(text)
    except UserInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def camera_uri(size: tuple[int, int], seed: int | str = 0, kind: str = DEFAULT_KIND,
               scene: dict[str, str] | None = None, fps: float = 30.0) -> str:
    """A paced synthetic camera (``live=1``, endless) of ``size`` (width, height): the
    default scene of the module doc, of ``kind``, with the ``scene`` parameters on top.
    ``seed="{seed}"`` makes a template for :func:`seeded`.

    Raises:
        UserInputError: an unknown kind, or parameters the scene refuses.
    """
    if kind not in SCENE_KINDS:
        raise UserInputError(f"unknown scene kind {kind!r}; use one of {', '.join(SCENE_KINDS)}")
    width, height = size
    params: dict[str, object] = {"seed": seed, "size": f"{width}x{height}", "fps": fps,
                                 **CAMERA_SCENE,
                                 "min_size": round(MIN_SIZE_AT_1280 * width / 1280.0, 1),
                                 "camera_motion": False, **SCENE_KINDS[kind]}
    params.update(scene or {})
    params["live"] = True
    uri = "synthetic://?" + "&".join(f"{key}={_word(value)}" for key, value in params.items())
    parse_synthetic_uri(seeded(uri, 0))  # a scene the world refuses is one line, here
    return uri


def with_params(uri: str, **params: object) -> str:
    """``uri`` (``synthetic://``) with ``params`` set (``None`` removes one); the others keep
    their order and spelling."""
    parts = urlsplit(uri)
    pairs = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True)
             if key.replace("-", "_") not in params]
    pairs += [(key, _word(value)) for key, value in params.items() if value is not None]
    return f"{parts.scheme}://{parts.netloc}{parts.path}?" + "&".join(
        f"{key}={value}" for key, value in pairs)


def paced_and_file(uri: str, seconds: float) -> tuple[str, str, int]:
    """The same synthetic scene as a paced camera and as a file, both ``frames`` long: the
    scene's own ``frames`` when it has an end within ``seconds``, else ``seconds`` of it.

    Returns:
        ``(paced, file, frames)``.
    """
    config, _ = parse_synthetic_uri(uri)
    frames = max(1, round(seconds * config.fps))
    if config.frames:
        frames = min(frames, config.frames)
    return (with_params(uri, live=True, frames=frames), with_params(uri, live=None,
                                                                    frames=frames), frames)


def seeded(template: str, seed: int) -> str:
    """``template`` for camera ``seed``: ``{seed}`` in it becomes the number."""
    return template.replace("{seed}", str(seed))
