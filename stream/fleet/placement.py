"""Which worker runs which stream: a pure, deterministic function of demands and capacities.

A worker serves one model (its streams share engine calls), so it takes only streams of that
model; a stream that needs a GPU goes only to a worker with one; and the frames/s of a
worker's streams never add up to more than its capacity. Streams are placed in order of
priority (highest first), then of frame rate (largest first), then of name; each goes to the
worker that keeps the most free capacity after taking it (the first listed on a tie), which
spreads the load. What fits nowhere is reported with the reason, never squeezed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_SLACK = 1e-9  # frames/s; sums of rates like 0.1 + 0.2 must not overflow a capacity of 0.3


@dataclass(frozen=True)
class Demand:
    """What one stream asks of a worker.

    Attributes:
        name: the stream's name.
        fps: frames/s it needs.
        model: its model key (streams of one worker share one).
        gpu: it needs a worker with a GPU.
        priority: larger is placed first.
    """

    name: str
    fps: float
    model: str
    gpu: bool = False
    priority: int = 0


@dataclass(frozen=True)
class Slot:
    """What one worker offers.

    Attributes:
        name: the worker's name.
        capacity: frames/s it sustains, per model key it can serve (a model missing here
            cannot run on it).
        gpus: GPUs it holds.
    """

    name: str
    capacity: Mapping[str, float]
    gpus: float = 0.0


@dataclass(frozen=True)
class Placement:
    """The outcome.

    Attributes:
        assigned: worker name → names of its streams, in placing order (every worker listed).
        load: worker name → frames/s of its streams.
        model: worker name → the model key it serves (absent: it got no stream).
        shortage: stream name → why it could not be placed.
    """

    assigned: dict[str, list[str]]
    load: dict[str, float]
    model: dict[str, str] = field(default_factory=dict)
    shortage: dict[str, str] = field(default_factory=dict)

    def worker_of(self, stream: str) -> str | None:
        for worker, names in self.assigned.items():
            if stream in names:
                return worker
        return None


def _why_not(demand: Demand, slots: Sequence[Slot], placement: Placement) -> str:
    """One sentence: why no worker could take ``demand``."""
    if not slots:
        return "there is no worker"
    able = [s for s in slots if not demand.gpu or s.gpus > 0]
    if not able:
        return "it needs a GPU and no worker has one"
    serving = [s for s in able if demand.model in s.capacity]
    if not serving:
        return f"no worker can run model {demand.model}"
    free = [s for s in serving if placement.model.get(s.name, demand.model) == demand.model]
    if not free:
        return f"every worker able to take it serves another model than {demand.model}"
    best = max(free, key=lambda s: s.capacity[demand.model] - placement.load[s.name])
    left = best.capacity[demand.model] - placement.load[best.name]
    return (f"it needs {demand.fps:g} frames/s and the most free capacity is {left:g} "
            f"frames/s (on {best.name}); add a worker or lower its fps")


def place(demands: Sequence[Demand], slots: Sequence[Slot]) -> Placement:
    """Place ``demands`` on ``slots`` without exceeding any capacity.

    Args:
        demands: the streams; names must be unique.
        slots: the workers, in order of preference on a tie; names must be unique.

    Returns:
        The placement; the same inputs always give the same placement.
    """
    placement = Placement(assigned={s.name: [] for s in slots},
                          load={s.name: 0.0 for s in slots})
    order = sorted(demands, key=lambda d: (-d.priority, -d.fps, d.name))
    for demand in order:
        best: Slot | None = None
        best_left = 0.0
        for slot in slots:
            if demand.gpu and slot.gpus <= 0:
                continue
            if demand.model not in slot.capacity:
                continue
            if placement.model.get(slot.name, demand.model) != demand.model:
                continue
            left = slot.capacity[demand.model] - placement.load[slot.name] - demand.fps
            if left < -_SLACK:
                continue
            if best is None or left > best_left:
                best, best_left = slot, left
        if best is None:
            placement.shortage[demand.name] = _why_not(demand, slots, placement)
            continue
        placement.assigned[best.name].append(demand.name)
        placement.load[best.name] += demand.fps
        placement.model[best.name] = demand.model
    return placement
