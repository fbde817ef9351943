"""H.264 video writing through PyAV (FFmpeg inside the wheel), playable in browsers.

OpenCV cannot write H.264 on these machines and its ``mp4v`` files do not play in Chromium,
so every video detstream writes goes through :class:`VideoWriter`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from detstream.engines.errors import UserInputError

#: Encoders detstream can use for .mp4/.mkv/.webm output, in order of preference.
KNOWN_ENCODERS: tuple[str, ...] = (
    "libx264", "h264_nvenc", "libopenh264", "libx265", "hevc_nvenc", "libvpx-vp9", "libvpx",
    "libsvtav1", "libaom-av1", "mpeg4",
)


def frame_rate(fps: float) -> Fraction:
    """A rational frame rate for ``fps`` (29.97 becomes 30000/1001)."""
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise UserInputError(f"frame rate must be positive, got {fps:g}")
    return rate


#: x264 presets offered for annotated video, fastest first. The default, ``veryfast``, was
#: chosen by measurement (BENCHMARKS.md, "Lean stages"): at 1920x1080 on 2 cores it took
#: 15.3 ms of CPU a frame for 1.4 Mbit/s; ``superfast`` 12.5 ms for 3.9 Mbit/s and
#: ``ultrafast`` 7.4 ms for 4.3 Mbit/s at the same quality (CRF 23); ``faster`` 26 ms for a
#: slightly larger file.
VIDEO_PRESETS: tuple[str, ...] = ("ultrafast", "superfast", "veryfast", "faster", "fast",
                                  "medium")
DEFAULT_PRESET = "veryfast"

#: How video is decoded (``--decoder``): ``auto`` uses NVIDIA's hardware decoder (NVDEC,
#: through the CUDA support of PyAV's FFmpeg) where the machine has one and the CPU elsewhere;
#: ``software`` always decodes on the CPU; ``nvdec`` insists on the hardware decoder.
DECODERS: tuple[str, ...] = ("auto", "software", "nvdec")


@functools.cache
def nvdec_unavailable() -> str | None:
    """Why NVIDIA's decoder cannot be used here (one phrase), or ``None`` when it can.

    The check opens FFmpeg's CUDA device once per process (an H.264 decoder on it).
    """
    try:
        from av.codec.hwaccel import HWAccel, hwdevices_available
    except ImportError:
        return f"PyAV {av.__version__} has no hardware decoding (PyAV 14 and newer have it)"
    if "cuda" not in hwdevices_available():
        return "PyAV's FFmpeg was built without CUDA"
    try:
        HWAccel(device_type="cuda").create(av.Codec("h264", "r"))
    except (av.FFmpegError, OSError, ValueError) as exc:
        return f"FFmpeg finds no CUDA device ({exc})"
    return None


def hardware_decoder(decoder: str):
    """The ``hwaccel`` argument of ``av.open`` for ``decoder``; ``None`` decodes on the CPU.

    Frames decoded by NVDEC are copied back to host memory (NV12) by FFmpeg; streams NVDEC
    cannot decode (a codec or size it lacks) are decoded on the CPU instead.

    Raises:
        UserInputError: an unknown decoder, or ``nvdec`` where it cannot run.
    """
    if decoder not in DECODERS:
        raise UserInputError(f"--decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
    if decoder == "software":
        return None
    why = nvdec_unavailable()
    if why is not None:
        if decoder == "nvdec":
            raise UserInputError(f"--decoder nvdec: NVIDIA's video decoder is not available "
                                 f"here: {why}; use --decoder auto or software")
        return None
    from av.codec.hwaccel import HWAccel

    return HWAccel(device_type="cuda", allow_software_fallback=True)


#: FFmpeg colour tags (``AVColorSpace`` and ``AVColorRange`` numbers) of the frames OpenCV's
#: I420 conversion decodes exactly as FFmpeg would: BT.601 or untagged (FFmpeg's default is
#: BT.601 too), limited range or untagged.
_OPENCV_COLORSPACES = (2, 5, 6)  # unspecified, BT.470BG, SMPTE 170M
_OPENCV_RANGES = (0, 1)  # unspecified, MPEG (limited)
_OPENCV_CONVERSIONS = {"yuv420p": cv2.COLOR_YUV2BGR_I420, "nv12": cv2.COLOR_YUV2BGR_NV12}


def frame_to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as uint8 [H, W, 3] BGR.

    Most H.264 video decodes to yuv420p (NVDEC's frames arrive as NV12). When the colour tags
    are ones OpenCV's conversion matches (see :data:`_OPENCV_COLORSPACES`), OpenCV converts
    it: 0.5 to 2 ms less CPU per frame than FFmpeg's swscale at 768x432 to 1920x1080
    (BENCHMARKS.md, "Lean stages"). Other formats, BT.709 and full-range frames go through
    FFmpeg, which reads their tags.
    """
    conversion = _OPENCV_CONVERSIONS.get(frame.format.name)
    if (conversion is not None
            and getattr(frame, "colorspace", None) in _OPENCV_COLORSPACES
            and getattr(frame, "color_range", None) in _OPENCV_RANGES and frame.width % 2 == 0
            and frame.height % 2 == 0):
        return cv2.cvtColor(frame.to_ndarray(), conversion)
    return frame.to_ndarray(format="bgr24")


class VideoWriter:
    """Write BGR frames to an H.264 (yuv420p) file; use as a context manager.

    The file is finalised by :meth:`close` (also on exceptions inside the ``with`` block), so an
    interrupted run still leaves a playable file. Odd frame sizes are padded by one pixel on the
    right/bottom, since yuv420p needs even sizes.

    Args:
        path: output file (.mp4, .mkv or .mov).
        width, height: frame size in pixels.
        fps: frames per second.
        codec: FFmpeg encoder name.
        crf: constant rate factor (lower is better quality; 23 is the x264 default).
        preset: x264 speed preset.
        threads: encoder threads (0 lets the encoder choose).
        tune: x264 tuning, e.g. ``zerolatency`` for live sources: no lookahead or B-frames,
            slice threads instead of frame threads, so each frame is encoded as it arrives.
        fragmented: for runs without an end (cameras, looping files), an .mp4 written as
            fragments (a fragment per keyframe, no index held back for the end). A plain MP4
            keeps every frame's index entry in memory until it is closed: about 74 bytes a
            frame, 190 MB a day at 30 fps; fragments keep memory flat (0.002 KB a frame,
            measured) and leave a playable file up to the last fragment even after a crash.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float,
                 codec: str = "libx264", crf: int = 23, preset: str = DEFAULT_PRESET,
                 threads: int = 0, tune: str | None = None, fragmented: bool = False) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self._pad = (self.height % 2, self.width % 2)
        try:
            flags = ("+frag_keyframe+empty_moov+default_base_moof" if fragmented
                     and self.path.suffix.lower() in (".mp4", ".mov") else "+faststart")
            self._container = av.open(str(self.path), mode="w", options={"movflags": flags})
        except (OSError, av.FFmpegError) as exc:
            raise UserInputError(f"cannot create video file {self.path}: {exc}") from None
        rate = frame_rate(fps)
        options = {"crf": str(crf), "preset": preset} if codec == "libx264" else {}
        if tune and codec == "libx264":
            options["tune"] = tune
        self._stream = self._container.add_stream(codec, rate=rate, options=options)
        self._stream.width = self.width + self._pad[1]
        self._stream.height = self.height + self._pad[0]
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = 1 / rate
        self._stream.codec_context.thread_count = threads
        self.frames_written = 0
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame: uint8 [H, W, 3] BGR of the size given at construction."""
        if frame.shape != (self.height, self.width, 3):
            raise ValueError(
                f"VideoWriter: expected a frame of shape {(self.height, self.width, 3)}, "
                f"got {frame.shape}"
            )
        if any(self._pad):
            frame = np.pad(frame, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        # OpenCV's BGR to I420 (BT.601, limited range, as FFmpeg's own conversion) with
        # averaged chroma: at 1920x1080 1.3 ms of CPU against 11.7 ms for swscale inside the
        # encoder, and 3 dB more PSNR after encoding (BENCHMARKS.md, "Lean stages").
        yuv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2YUV_I420)
        video_frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        video_frame.pts = self.frames_written
        self._container.mux(self._stream.encode(video_frame))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finalise the file (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@contextlib.contextmanager
def _native_output_silenced() -> Iterator[None]:
    """Send what native libraries print (x265 and SVT-AV1 banners) to /dev/null for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def probe_encoder(codec: str, width: int = 64, height: int = 64) -> tuple[bool, str]:
    """Try to encode a few frames with ``codec`` in memory.

    Returns:
        ``(works, detail)``: detail is the encoder's long name, or why it failed.
    """
    with _native_output_silenced():
        return _probe_encoder(codec, width, height)


def _probe_encoder(codec: str, width: int, height: int) -> tuple[bool, str]:
    try:
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format="matroska") as container:
            stream = container.add_stream(codec, rate=30)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            for i in range(3):
                frame = av.VideoFrame.from_ndarray(
                    np.full((height, width, 3), 40 * i, np.uint8), format="bgr24")
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return True, stream.codec_context.codec.long_name
    except av.codec.codec.UnknownCodecError:
        return False, "not built into this FFmpeg"
    except Exception as exc:  # any other FFmpeg failure means "not usable here"
        text = str(exc).splitlines()[0] if str(exc) else ""
        return False, f"cannot open: {text or type(exc).__name__}"
