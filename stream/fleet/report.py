"""The fleet's statistics, built from the controller's records by pure functions: per stream
(the keys of ``detstream run --stats-json`` over all its runs), per worker, and the whole
fleet (what ``detstream fleet status`` shows and ``--stats-json`` writes)."""

from __future__ import annotations

from collections.abc import Sequence

from detstream.stream.fleet.states import (
    StreamRecord,
    StreamState,
    WorkerRecord,
    load_of,
    model_of,
)

#: Counters of a stream's statistics that add up over its runs (before and after a move).
COUNTERS = ("frames_in", "frames_out", "frames_dropped", "frames_skipped")


def stream_report(stream: StreamRecord) -> dict:
    """One stream's statistics over all its runs: the keys of ``detstream run
    --stats-json`` (counters summed over the runs, rates and latency of the last), plus
    its name, state, worker, restarts, labels and zone."""
    runs = stream.runs + ([stream.current] if stream.current else [])
    spec = stream.spec
    if runs:
        last = runs[-1]
        entry = {key: sum(r.get(key, 0) for r in runs) for key in COUNTERS}
        entry |= {"uri": spec.uri, "fps": last.get("fps", 0.0),
                  "latency_ms": last.get("latency_ms"), "source": last.get("source"),
                  "scores": last.get("scores")}
    else:
        entry = {key: 0 for key in COUNTERS} | {
            "uri": spec.uri, "fps": 0.0, "latency_ms": None, "source": None,
            "scores": None}
    error = stream.error or next((r.get("error") for r in reversed(runs)
                                  if r.get("error")), None)
    zone = [list(p) for p in spec.zone] if spec.zone else None
    waiting = stream.state is StreamState.WAITING
    return entry | {"stream": stream.index, "name": spec.name, "state": stream.state.value,
                    "worker": stream.worker or (stream.workers[-1] if stream.workers
                                                else None),
                    "workers": list(stream.workers), "restarts": stream.restarts,
                    "attempts": stream.attempts, "error": error,
                    "waiting_for": stream.shortage if waiting else None,
                    "demand_fps": spec.fps, "priority": spec.priority,
                    "labels": dict(spec.labels), "zone": zone}


def frames_on(worker: WorkerRecord, streams: Sequence[StreamRecord]) -> int:
    """Frames the streams wrote on ``worker`` (runs that ended there, and those going on);
    ``streams``: all of the fleet's, by number."""
    name = worker.spec.name
    ended = sum(r.get("frames_out", 0) for s in streams for r in s.runs
                if r.get("worker") == name)
    return ended + sum((streams[i].current or {}).get("frames_out", 0)
                       for i in worker.streams)


def worker_report(worker: WorkerRecord, streams: Sequence[StreamRecord]) -> dict:
    """One worker's resources, capacity, load, model, streams (running now, and every one
    that ran there) and counters; ``streams``: all of the fleet's, by number."""
    return {"name": worker.spec.name, "cpus": worker.spec.cpus, "gpus": worker.spec.gpus,
            "pid": worker.pid, "host": worker.host, "alive": worker.alive,
            "capacity_fps": dict(worker.capacity), "load_fps": load_of(worker, streams),
            "peak_load_fps": worker.peak_load,
            "model": model_of(worker, streams), "device": worker.device,
            "streams": [streams[i].spec.name for i in sorted(worker.streams)],
            "ran": [s.spec.name for s in streams if worker.spec.name in s.workers],
            "frames_out": frames_on(worker, streams),
            "inference": worker.inference, "error": worker.error}


def active_seconds(began: float, first_start: float | None, ended: float | None,
                   now: float) -> float:
    """Seconds the streams ran: from the first stream's start (else from ``began``) to the
    end (else to ``now``), so that workers starting and models loading are left out."""
    start = first_start if first_start is not None else began
    return max((ended or now) - start, 1e-9)


def fleet_report(streams: list[dict], workers: list[dict], events: list[dict],
                 seconds: float, interrupted: bool, address: str) -> dict:
    """The whole fleet: ``streams`` (:func:`stream_report`'s), ``workers``
    (:func:`worker_report`'s) and the ``events`` so far, with totals that are the sums over
    the streams and their frames/s over ``seconds``."""
    frames_out = sum(s["frames_out"] for s in streams)
    shortage = {s["name"]: s["waiting_for"] for s in streams if s["waiting_for"]}
    return {"frames_in": sum(s["frames_in"] for s in streams), "frames_out": frames_out,
            "frames_dropped": sum(s["frames_dropped"] for s in streams),
            "fps": round(frames_out / seconds, 2), "seconds": round(seconds, 3),
            "interrupted": interrupted, "address": address,
            "shortage": shortage, "workers": workers, "streams": streams,
            "events": list(events)}
