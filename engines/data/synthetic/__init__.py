"""The synthetic world: seeded video scenes with exact ground truth.

It trains the embedded default model, feeds every stage's tests with no network, and serves
as the live source ``synthetic://``.
"""

from detstream.engines.data.synthetic.config import (
    CLASS_NAMES,
    DISTRACTOR_NAMES,
    SceneConfig,
    parse_size,
    parse_synthetic_uri,
)
from detstream.engines.data.synthetic.render import RenderedFrame, Renderer
from detstream.engines.data.synthetic.scene import SyntheticScene
from detstream.engines.data.synthetic.world import FrameState, World

__all__ = [
    "CLASS_NAMES",
    "DISTRACTOR_NAMES",
    "FrameState",
    "RenderedFrame",
    "Renderer",
    "SceneConfig",
    "SyntheticScene",
    "World",
    "parse_size",
    "parse_synthetic_uri",
]
