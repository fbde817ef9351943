"""A synthetic scene as an iterator of ``(frame, ground truth)``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from detstream.engines.data.synthetic.config import SceneConfig
from detstream.engines.data.synthetic.render import RenderedFrame, Renderer
from detstream.engines.data.synthetic.world import FrameState, World
from detstream.engines.spec import Detections


class SyntheticScene:
    """Iterate ``(image, truth)`` pairs of a seeded synthetic scene.

    ``image`` is uint8 [H, W, 3] BGR; ``truth`` is a :class:`~detstream.engines.spec.Detections`
    with
    track ids, classes, exact ``xyxy`` boxes clipped to the frame and ``data["visibility"]``.
    Each iteration starts the scene again from its first frame.

    Example:
        >>> scene = SyntheticScene(SceneConfig(width=640, height=360, frames=3, seed=1))
        >>> [len(frame) for frame, truth in scene]
        [360, 360, 360]
    """

    def __init__(self, config: SceneConfig) -> None:
        self.config = config

    def __len__(self) -> int:
        if self.config.frames is None:
            raise TypeError("an endless synthetic scene has no length")
        return self.config.frames

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.class_names

    def states(self) -> Iterator[FrameState]:
        """The world's states frame by frame, without rendering."""
        world = World(self.config)
        frames = self.config.frames
        for _ in range(frames) if frames is not None else itertools.count():
            yield world.step()

    def rendered(self, instances: bool = False) -> Iterator[tuple[FrameState, RenderedFrame]]:
        """States with their rendered frames (and per-pixel track ids when ``instances``)."""
        world = World(self.config)
        renderer = Renderer(world)
        frames = self.config.frames
        for _ in range(frames) if frames is not None else itertools.count():
            state = world.step()
            yield state, renderer.render(state, instances=instances)

    def __iter__(self) -> Iterator[tuple[np.ndarray, Detections]]:
        for _, rendered in self.rendered():
            yield rendered.image, rendered.truth
