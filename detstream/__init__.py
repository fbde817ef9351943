"""detstream: real-time video object detection and tracking.

The public Python API. The repository keeps the design card's folders (``engines/``, the model
side; ``stream/``, the live side; ``demo/``, the Gradio page); they install as
``detstream.engines``, ``detstream.stream`` and ``detstream.demo``, so no top-level name clashes
with other packages. The names below load on first use, so ``import detstream`` stays light::

    import detstream

    for packet in detstream.track("clip.mp4", tracker="bytetrack"):
        packet.detections          # detstream.Detections with track ids
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

# A source checkout that is not installed (``PYTHONPATH=. python3 scripts/gpu_check.py`` on a
# machine that only has the repository): the folders sit beside this one, so they are
# searched as this package's subpackages. An installed copy has them inside (no change).
_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "engines" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))

from detstream.engines import __version__  # noqa: E402

# public name -> module that defines it
_EXPORTS = {
    "track": "detstream.stream.session",
    "build": "detstream.stream.session",
    "RunConfig": "detstream.stream.run_config",
    "Session": "detstream.stream.session",
    "FramePacket": "detstream.stream.pipeline.packet",
    "MultiSession": "detstream.stream.multisession",
    "InferenceService": "detstream.stream.pipeline.service",
    "Detections": "detstream.engines.spec",
    "open_source": "detstream.stream.sources",
    "Source": "detstream.stream.sources.base",
    "PushSource": "detstream.stream.sources.push",
    "open_backend": "detstream.engines.runtime.select",
    "Predictor": "detstream.engines.predict",
    "make_tracker": "detstream.stream.track",
    "TrackEvent": "detstream.stream.track.base",
    "Annotator": "detstream.stream.draw",
    "DrawConfig": "detstream.stream.draw",
}

__all__ = [
    "Annotator",
    "Detections",
    "DrawConfig",
    "FramePacket",
    "InferenceService",
    "MultiSession",
    "Predictor",
    "PushSource",
    "RunConfig",
    "Session",
    "Source",
    "TrackEvent",
    "__version__",
    "build",
    "make_tracker",
    "open_backend",
    "open_source",
    "track",
]

if TYPE_CHECKING:
    from detstream.engines.predict import Predictor
    from detstream.engines.runtime.select import open_backend
    from detstream.engines.spec import Detections
    from detstream.stream.draw import Annotator, DrawConfig
    from detstream.stream.multisession import MultiSession
    from detstream.stream.pipeline.packet import FramePacket
    from detstream.stream.pipeline.service import InferenceService
    from detstream.stream.session import RunConfig, Session, build, track
    from detstream.stream.sources import open_source
    from detstream.stream.sources.base import Source
    from detstream.stream.sources.push import PushSource
    from detstream.stream.track import make_tracker
    from detstream.stream.track.base import TrackEvent


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'detstream' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
