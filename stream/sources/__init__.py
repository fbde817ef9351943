"""Sources named by URI, one mental model for every input (as jetson-utils' videoSource):

==========================================  ============================  ====================
URI                                         what                          default mode
==========================================  ============================  ====================
``0``, ``1``, ``/dev/video0``               a camera                      live (drops)
``clip.mp4``                                a video file                  every frame
``frames/``, ``'frames/*.jpg'``, ``a.png``  images, sorted by name        every frame
``rtsp://``, ``rtmp://``, ``http(s)://``    a network stream (MJPEG, HLS)  live, reconnects
``http(s)://host/clip.mp4``                 a video file over HTTP        every frame
``synthetic://?seed=1&size=640x360&...``    the synthetic world           ``live=1`` paces it
``push://?fps=30&paced=1``                  frames the caller pushes      live (drops)
==========================================  ============================  ====================

``push://`` opens a :class:`PushSource`: the application hands frames to
``source.push(image, tag=...)`` (a browser webcam's frames, for example).

Live sources are read by their own thread into a newest-frame slot, so a slow pipeline drops
old frames (counted) instead of building latency; ``live=True``/``False`` and ``drop=False``
override the defaults (``--live``, ``--no-drop``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from detstream.engines.errors import UserInputError
from detstream.stream.sources.base import Frame, Source, SourceStats
from detstream.stream.sources.grabbers import (
    IMAGE_SUFFIXES,
    CameraGrabber,
    ImageGrabber,
    NetworkGrabber,
    SyntheticGrabber,
    VideoFileGrabber,
)
from detstream.stream.sources.push import PushSource
from detstream.stream.sources.reader import DirectSource, LiveSource

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".flv", ".mpg"}
URI_HELP = ("0 or /dev/video0 (camera), clip.mp4, a folder or 'frames/*.jpg', rtsp://..., "
            "http://..., synthetic://?seed=1")


def open_source(uri: str, live: bool | None = None, drop: bool = True,
                log: Callable[[str], None] | None = None,
                stall_timeout: float = 5.0, loop: int = 0, decoder: str = "auto",
                start_frame: int = 0) -> Source:
    """Open the input named by ``uri``.

    Args:
        uri: see the table above.
        live: force live (paced, newest-frame) or file (every frame) semantics.
        drop: for live sources, keep only the newest frame (``False``: queue every frame).
        log: where live sources report connection status, and image folders the images
            they skip.
        stall_timeout: a network stream that delivers no frame for this many seconds while
            connected counts as lost (a stall) and is reconnected.
        loop: files, image folders and finite synthetic scenes: play them this many more
            times (``-1``: forever).
        decoder: video files and network streams: ``auto`` (NVIDIA's decoder where there is
            one), ``software`` or ``nvdec`` (see :data:`detstream.engines.data.video.DECODERS`).
        start_frame: files, image folders and unpaced synthetic scenes begin at this frame
            index (the frames before it are read and discarded; indices and times stay the
            input's). Live sources cannot skip ahead; they number their frames from it, so
            a resumed run never repeats an index. ``push://`` numbers its own frames.

    Raises:
        UserInputError: nothing usable at ``uri`` (one sentence naming the fix).
    """
    uri = str(uri).strip()
    if uri.startswith("push://"):
        if live is False:
            raise UserInputError("a push:// source is always live; drop --no-live")
        query = parse_qs(urlparse(uri).query)
        return PushSource(uri, fps=_push_fps(uri), drop=drop,
                          paced=query.get("paced", ["1"])[-1] not in ("0", "false", "no"))
    if uri.startswith("synthetic://"):
        from detstream.engines.data.synthetic import parse_synthetic_uri

        config, uri_live = parse_synthetic_uri(uri)
        grabber = SyntheticGrabber(config)
        is_live = uri_live if live is None else live
        if is_live:
            return LiveSource(uri, grabber, drop=drop, pace=config.fps, reconnect=False, log=log,
                              first_index=start_frame)
        return DirectSource(uri, grabber, loop=loop, start_frame=start_frame)
    if re.fullmatch(r"\d+", uri) or re.fullmatch(r"/dev/video\d+", uri):
        index = int(re.search(r"\d+$", uri).group())
        if live is False:
            raise UserInputError("a camera is always live; drop --no-live or use --no-drop")
        return LiveSource(uri, CameraGrabber(index), drop=drop, log=log,
                          first_index=start_frame)
    scheme = urlparse(uri).scheme.lower()
    if scheme in NETWORK_SCHEMES:
        if Path(urlparse(uri).path).suffix.lower() in VIDEO_SUFFIXES and scheme.startswith("http"):
            grabber = VideoFileGrabber(uri, network=True, decoder=decoder)
            if live:
                return LiveSource(uri, grabber, drop=drop, pace=None, reconnect=False, log=log,
                                  first_index=start_frame)
            return DirectSource(uri, grabber, start_frame=start_frame)
        grabber = NetworkGrabber(uri, timeout=stall_timeout, decoder=decoder)
        if live is False:
            return DirectSource(uri, grabber, start_frame=start_frame)
        return LiveSource(uri, grabber, drop=drop, log=log, first_index=start_frame)
    if "://" in uri:
        raise UserInputError(f"unknown source scheme in {uri!r}; sources look like: {URI_HELP}")
    path = Path(uri)
    if path.is_dir() or any(c in uri for c in "*?[") or (
            path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
        grabber = ImageGrabber(uri, log=log)
    elif path.is_file():
        grabber = VideoFileGrabber(uri, decoder=decoder)
    else:
        raise UserInputError(f"source {uri!r} does not exist; sources look like: {URI_HELP}")
    if live:
        fps = getattr(grabber, "fps", None)
        source = LiveSource(uri, grabber, drop=drop, pace=None, reconnect=False, log=log,
                            first_index=start_frame)
        source.pace = source.fps or fps or 30.0  # a file read as if live runs at its frame rate
        return source
    return DirectSource(uri, grabber, loop=loop, start_frame=start_frame)


def _push_fps(uri: str) -> float | None:
    values = parse_qs(urlparse(uri).query).get("fps")
    if not values:
        return None
    try:
        fps = float(values[-1])
    except ValueError:
        fps = 0.0
    if not fps > 0:
        raise UserInputError(f"{uri}: fps must be a positive number, got {values[-1]!r}")
    return fps


__all__ = ["Frame", "PushSource", "Source", "SourceStats", "open_source"]
