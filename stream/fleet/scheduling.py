"""The controller's decisions, as pure functions of plain data: what to measure on a worker,
what room it offers (:class:`~detstream.stream.fleet.placement.Slot`), which lower-priority
streams to stop so that a higher one fits (shedding), and when to try a failed source again.

Where streams go among the room offered is :func:`~detstream.stream.fleet.placement.place`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from detstream.stream.fleet.config import StreamSpec
from detstream.stream.fleet.placement import Demand, Slot

#: First wait before a stream whose source failed to open is tried again; it doubles each
#: time up to :data:`RETRY_MAX` seconds.
RETRY_FIRST = 1.0
RETRY_MAX = 60.0
#: frames/s; as in placement, sums of rates like 0.1 + 0.2 must not overflow 0.3
_SLACK = 1e-9


def demand_of(spec: StreamSpec) -> Demand:
    """What ``spec`` asks of a worker."""
    return Demand(spec.name, spec.fps, spec.model_key, spec.gpu, spec.priority)


def models_to_measure(serving: str | None,
                      waiting: Sequence[StreamSpec]) -> dict[str, StreamSpec]:
    """The model keys of the ``waiting`` streams that a worker serving ``serving`` (None:
    nothing yet) could take, each with the first stream that asks for it (its settings are
    the ones measured)."""
    wanted: dict[str, StreamSpec] = {}
    for spec in waiting:
        if serving in (None, spec.model_key):
            wanted.setdefault(spec.model_key, spec)
    return wanted


def slot_of(name: str, gpus: float, capacity: Mapping[str, float], load: float) -> Slot:
    """The room a worker offers: per model key its capacity less the ``load`` (frames/s)
    it already carries."""
    return Slot(name, {key: fps - load for key, fps in capacity.items()}, gpus)


def retry_delay(attempts: int, retries: int) -> float | None:
    """Seconds to wait before the next try after ``attempts`` failed opens in a row
    (:data:`RETRY_FIRST`, doubling up to :data:`RETRY_MAX`), or None once they are more
    than the ``retries`` allowed (``-1``: without end)."""
    if retries >= 0 and attempts > retries:
        return None
    return min(RETRY_MAX, RETRY_FIRST * 2 ** (attempts - 1))


@dataclass(frozen=True)
class Running:
    """A stream running on a worker, as shedding weighs it.

    Attributes:
        stream: its number.
        fps: frames/s it asks for.
        priority: larger is kept first.
    """

    stream: int
    fps: float
    priority: int


@dataclass(frozen=True)
class Occupied:
    """A live worker and what runs on it, as shedding sees it.

    Attributes:
        name: the worker's name.
        gpus: GPUs it holds.
        model: the model key it serves (None while it runs nothing).
        capacity: frames/s it sustains per model key, as far as known (declared or
            measured).
        running: its streams.
    """

    name: str
    gpus: float
    model: str | None
    capacity: Mapping[str, float]
    running: tuple[Running, ...]

    @property
    def load(self) -> float:
        """Frames/s its streams ask for."""
        return sum(r.fps for r in self.running)


@dataclass(frozen=True)
class Shedding:
    """Where room is made for a stream.

    Attributes:
        worker: the worker that takes it.
        victims: numbers of the streams to stop there, lowest priority first (empty when
            the room is free already).
    """

    worker: str
    victims: tuple[int, ...]


def choose_shedding(demand: Demand, workers: Sequence[Occupied]) -> Shedding | None:
    """The first of ``workers`` where stopping streams of a lower priority than ``demand``
    (lowest first, the larger first among equals) frees enough capacity for it; None when
    none can."""
    for worker in workers:
        if demand.gpu and worker.gpus <= 0:
            continue
        if worker.model not in (None, demand.model):
            continue
        capacity = worker.capacity.get(demand.model)
        if capacity is None:
            continue
        lower = sorted((r for r in worker.running if r.priority < demand.priority),
                       key=lambda r: (r.priority, -r.fps))
        free = capacity - worker.load
        victims: list[int] = []
        for candidate in lower:
            if free >= demand.fps - _SLACK:
                break
            victims.append(candidate.stream)
            free += candidate.fps
        if free >= demand.fps - _SLACK:
            return Shedding(worker.name, tuple(victims))
    return None
