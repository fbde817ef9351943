"""The fleet controller's parts without Ray: a stream's state moves only by the events its
state allows, the statistics add up from plain records, the scheduling decisions (retries,
room, shedding) are pure, and the loop marks a worker lost while measuring only after the
measuring pass, calling it the way it calls for everything else."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from detstream.engines.errors import UserInputError
from detstream.stream.fleet.config import FleetConfig, StreamSpec, WorkerSpec, parse_fleet
from detstream.stream.fleet.controller import Fleet
from detstream.stream.fleet.placement import Demand
from detstream.stream.fleet.report import (
    active_seconds,
    fleet_report,
    stream_report,
    worker_report,
)
from detstream.stream.fleet.scheduling import (
    Occupied,
    Running,
    Shedding,
    choose_shedding,
    models_to_measure,
    retry_delay,
    slot_of,
)
from detstream.stream.fleet.states import (
    TRANSITIONS,
    IllegalTransitionError,
    StreamRecord,
    StreamState,
    WorkerRecord,
)

W, R, T, D, F, X = (StreamState.WAITING, StreamState.RUNNING, StreamState.RETRYING,
                    StreamState.DONE, StreamState.FAILED, StreamState.REMOVED)


def _spec(name: str = "a", fps: float = 10.0, priority: int = 0, model: str = "default",
          gpu: bool = False) -> StreamSpec:
    """A stream as the cameras YAML describes it (nothing is opened or written)."""
    stream = {"name": name, "uri": "synthetic://?seed=1", "model": model, "fps": fps,
              "priority": priority, "gpu": gpu}
    data = {"defaults": {"outputs": {"json": "{name}.jsonl"}}, "streams": [stream]}
    return parse_fleet(data, Path("/nonexistent/cameras.yaml")).streams[0]


def _record(state: StreamState, name: str = "a", index: int = 0) -> StreamRecord:
    stream = StreamRecord(_spec(name), index)
    stream.state = state
    return stream


# ---------------------------------------------------------------------------- the states

#: One call per event, with arguments that fit it.
EVENTS = {
    "started": lambda s: s.started("w0", 0, now=5.0),
    "finished": lambda s: s.finished({"frames_out": 3}),
    "lost": lambda s: s.lost(now=1.0),
    "shed": lambda s: s.shed({"frames_out": 3}, "shed for vip (priority 5)"),
    "retry_later": lambda s: s.retry_later("cannot open", retry_at=9.0),
    "gave_up": lambda s: s.gave_up("cannot open"),
    "retry": lambda s: s.retry(),
    "removed": lambda s: s.removed(None),
}


def test_every_event_has_a_method_and_every_state_a_way_out_but_the_ends():
    assert set(EVENTS) == set(TRANSITIONS)
    leaving = {state for allowed, _ in TRANSITIONS.values() for state in allowed}
    assert leaving == set(StreamState) - {X}


@pytest.mark.parametrize(("event", "state"), [(e, s) for e, (allowed, _) in TRANSITIONS.items()
                                              for s in sorted(allowed, key=str)])
def test_a_legal_event_moves_the_state(event, state):
    stream = _record(state)
    EVENTS[event](stream)
    assert stream.state is TRANSITIONS[event][1]


@pytest.mark.parametrize(("event", "state"), [
    (e, s) for e, (allowed, _) in TRANSITIONS.items() for s in StreamState if s not in allowed])
def test_an_illegal_event_raises_and_changes_nothing(event, state):
    stream = _record(state)
    before = vars(stream).copy()
    with pytest.raises(IllegalTransitionError) as error:
        EVENTS[event](stream)
    assert isinstance(error.value, RuntimeError) and not isinstance(error.value, UserInputError)
    assert f"stream a: {event!r} cannot happen while {state.value}" in str(error.value)
    assert vars(stream) == before


def test_a_stream_lost_and_resumed_counts_each_frame_once_and_says_how_long_it_took():
    stream = StreamRecord(_spec(), 0)
    assert stream.started("w0", 0, now=1.0) is None  # a first start is no move
    stream.current = {"frames_in": 40, "frames_out": 38, "fps": 9.0}  # the last poll's
    stream.lost(now=10.0)
    assert (stream.state, stream.worker, stream.resume, stream.restarts) == (W, None, True, 1)
    assert stream.runs == [{"frames_in": 40, "frames_out": 38, "fps": 9.0, "start_frame": 0,
                            "worker": "w0"}]
    assert stream.started("w1", 42, now=12.5) == pytest.approx(2.5)
    # the lost run wrote exactly the frames before the resumed one
    assert stream.runs[0]["frames_out"] == stream.runs[0]["frames_in"] == 42
    assert (stream.worker, stream.current_start, stream.resume, stream.lost_at) == \
        ("w1", 42, False, None)
    assert stream.workers == ["w0", "w1"]
    stream.finished({"frames_in": 58, "frames_out": 58, "error": None})
    report = stream_report(stream)
    assert report["frames_out"] == 100 and report["state"] == "done"
    assert report["worker"] == "w1" and report["restarts"] == 1


def test_failed_opens_count_and_a_start_clears_them():
    stream = StreamRecord(_spec(), 0)
    stream.retry_later("cannot open rtsp://x", retry_at=3.0)
    assert (stream.state, stream.attempts, stream.retry_at) == (T, 1, 3.0)
    stream.retry()
    stream.gave_up("cannot open rtsp://x")
    assert (stream.state, stream.attempts, stream.error) == (F, 2, "cannot open rtsp://x")
    again = StreamRecord(_spec(), 0)
    again.retry_later("cannot open", retry_at=1.0)
    again.retry()
    again.started("w0", 0, now=2.0)
    assert (again.attempts, again.error) == (0, None)


def test_a_shed_stream_says_why_it_waits_until_it_runs_again():
    stream = StreamRecord(_spec(), 0)
    assert stream.waits_for("no worker has room") is True  # news: an event
    assert stream.waits_for("no worker has room") is False
    stream.started("w0", 0, now=1.0)
    stream.shed(None, "shed for vip (priority 5)")
    assert stream.waits_for("no worker has room") is False
    assert stream_report(stream)["waiting_for"] == "shed for vip (priority 5)"
    stream.started("w0", 0, now=2.0)
    assert stream.shortage is None and stream_report(stream)["waiting_for"] is None
    with pytest.raises(IllegalTransitionError, match="only a waiting stream"):
        stream.waits_for("no room")


# ---------------------------------------------------------------------------- reports

def test_reports_add_up_from_streams_to_workers_to_the_fleet():
    a, b = StreamRecord(_spec("a", fps=10), 0), StreamRecord(_spec("b", fps=5), 1)
    worker = WorkerRecord(WorkerSpec("w0", capacity_fps=30), actor=None, pid=7)
    for stream in (a, b):
        stream.started("w0", 0, now=1.0)
        worker.streams.add(stream.index)
    a.current = {"frames_in": 12, "frames_out": 11, "frames_dropped": 1, "fps": 9.5}
    b.finished({"frames_in": 4, "frames_out": 4, "error": "source ended badly"})
    worker.streams.discard(b.index)
    streams = [stream_report(a), stream_report(b)]
    assert streams[0]["frames_out"] == 11 and streams[0]["fps"] == 9.5
    assert streams[0]["state"] == "running" and streams[1]["error"] == "source ended badly"
    workers = [worker_report(worker, [a, b])]
    assert workers[0]["streams"] == ["a"] and workers[0]["ran"] == ["a", "b"]
    assert workers[0]["load_fps"] == 10 and workers[0]["model"] == a.spec.model_key
    assert workers[0]["frames_out"] == 15
    fleet = fleet_report(streams, workers, [{"event": "x"}], seconds=3.0, interrupted=False,
                         address="local")
    assert (fleet["frames_in"], fleet["frames_out"], fleet["frames_dropped"]) == (16, 15, 1)
    assert fleet["fps"] == 5.0 and fleet["shortage"] == {}


def test_the_fleet_s_seconds_run_from_the_first_start_to_the_end():
    assert active_seconds(began=0.0, first_start=2.0, ended=7.0, now=99.0) == 5.0
    assert active_seconds(began=1.0, first_start=None, ended=None, now=4.0) == 3.0
    assert active_seconds(began=1.0, first_start=1.0, ended=None, now=1.0) > 0


# ---------------------------------------------------------------------------- scheduling

def test_retries_back_off_doubling_to_a_cap_and_stop_when_spent():
    assert [retry_delay(n, retries=-1) for n in range(1, 9)] == \
        [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert [retry_delay(n, retries=2) for n in (1, 2, 3)] == [1.0, 2.0, None]
    assert retry_delay(1, retries=0) is None


def test_a_worker_measures_each_model_it_could_serve_once():
    specs = [_spec("a", model="m1"), _spec("b", model="m2"), _spec("c", model="m1")]
    assert {k: s.name for k, s in models_to_measure(None, specs).items()} == \
        {specs[0].model_key: "a", specs[1].model_key: "b"}
    assert list(models_to_measure(specs[1].model_key, specs)) == [specs[1].model_key]
    slot = slot_of("w0", 1.0, {"m1": 30.0, "m2": 12.0}, load=10.0)
    assert (slot.name, dict(slot.capacity), slot.gpus) == ("w0", {"m1": 20.0, "m2": 2.0}, 1.0)


def _occupied(name: str, running: list[tuple[int, float, int]], capacity: float = 20.0,
              gpus: float = 0.0, model: str | None = "m") -> Occupied:
    return Occupied(name, gpus, model if running else None, {"m": capacity},
                    tuple(Running(*r) for r in running))


@pytest.mark.parametrize(("demand", "workers", "expected"), [
    # the lowest priority goes first, the larger of equals first, and no more than needed
    (Demand("vip", 10, "m", priority=5),
     [_occupied("w0", [(0, 5, 1), (1, 10, 0), (2, 5, 0)])], Shedding("w0", (1,))),
    (Demand("vip", 12, "m", priority=5),
     [_occupied("w0", [(0, 5, 1), (1, 10, 0), (2, 5, 0)])], Shedding("w0", (1, 2))),
    # room that is free already: nothing to stop
    (Demand("vip", 5, "m", priority=5), [_occupied("w0", [(0, 10, 0)])], Shedding("w0", ())),
    # equal or higher priorities are never stopped
    (Demand("vip", 10, "m", priority=1), [_occupied("w0", [(0, 20, 1)])], None),
    # the first worker where it works
    (Demand("vip", 10, "m", priority=1),
     [_occupied("w0", [(0, 20, 2)]), _occupied("w1", [(1, 20, 0)]),
      _occupied("w2", [(2, 20, 0)])], Shedding("w1", (1,))),
    # a GPU stream needs a GPU worker; another model's worker and an unmeasured one cannot
    (Demand("vip", 10, "m", gpu=True, priority=1), [_occupied("w0", [(0, 20, 0)])], None),
    (Demand("vip", 10, "m", priority=1), [_occupied("w0", [(0, 20, 0)], model="other")],
     None),
    (Demand("vip", 10, "m2", priority=1), [_occupied("w0", [(0, 20, 0)])], None),
])
def test_shedding_stops_the_fewest_lowest_streams_that_make_room(demand, workers, expected):
    assert choose_shedding(demand, workers) == expected


# ---------------------------------------------------------------------------- the loop

class _Died(Exception):
    """Stands for Ray's RayActorError."""


class _Late(Exception):
    """Stands for Ray's GetTimeoutError."""


class _TaskFailed(Exception):
    """Stands for Ray's RayTaskError (an error raised by the worker's method)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Ray:
    """Answers at once: a call's reference is its answer, or the error it raises."""

    exceptions = SimpleNamespace(RayActorError=_Died, GetTimeoutError=_Late,
                                 RayTaskError=_TaskFailed)

    def __init__(self) -> None:
        self.killed: list = []

    def get(self, ref, timeout=None):
        if isinstance(ref, BaseException):
            raise ref
        return ref

    def kill(self, actor) -> None:
        self.killed.append(actor)


class _Actor:
    """A worker whose calls answer ``answers[method]`` (a value or an exception)."""

    def __init__(self, **answers) -> None:
        self.calls: list[str] = []
        for method, answer in answers.items():
            setattr(self, method, SimpleNamespace(remote=self._recorder(method, answer)))

    def _recorder(self, method, answer):
        def remote(*args):
            self.calls.append(method)
            return answer
        return remote


def _fleet(streams: list[StreamSpec], workers: dict[str, tuple[WorkerSpec, _Actor]]) -> Fleet:
    fleet = Fleet(FleetConfig(Path("cameras.yaml"), tuple(streams)), address="local")
    fleet._ray = _Ray()
    fleet.members = [WorkerRecord(spec, actor) for spec, actor in workers.values()]
    return fleet


def test_a_worker_lost_while_measuring_is_marked_lost_after_the_pass():
    dying = _Actor(measure=_Died("gone"))
    fleet = _fleet([_spec("a"), _spec("b"), _spec("c")],
                   {"w0": (WorkerSpec("w0"), dying),
                    "w1": (WorkerSpec("w1", capacity_fps=25), _Actor(add={"start_frame": 0}))})
    w0, w1 = fleet.members
    c = fleet.streams[2]
    c.started("w0", 0, now=0.0)  # c already runs on w0, whose capacity was never measured
    w0.streams.add(c.index)

    fleet._schedule()

    assert dying.calls == ["measure"]  # asked once, not once per waiting stream
    assert not w0.alive and "worker w0 died (_Died)" in w0.error
    assert [e["event"] for e in fleet.events] == ["worker_lost"]
    assert c.state is W and c.restarts == 1 and c.resume  # moved: placed next round
    assert [s.state for s in fleet.streams[:2]] == [R, R]
    assert [s.worker for s in fleet.streams[:2]] == ["w1", "w1"] and w1.streams == {0, 1}
    fleet._schedule()  # c needs 10 frames/s and w1 has 5 left
    assert c.state is W and "the most free capacity is 5 frames/s" in c.shortage


def test_a_start_uses_the_same_call_path_a_late_worker_is_lost_and_killed():
    late = _Actor(add=_Late())
    fleet = _fleet([_spec("a")], {"w0": (WorkerSpec("w0", capacity_fps=20), late)})
    fleet._schedule()
    (w0,), (a,) = fleet.members, fleet.streams
    assert not w0.alive and "did not answer within 120 s" in w0.error
    assert fleet._ray.killed == [late] and a.state is W


def test_a_source_that_does_not_open_is_retried_then_given_up():
    broken = _Actor(add=_TaskFailed(RuntimeError("cannot open rtsp://x\nmore")))
    fleet = _fleet([_spec("a")], {"w0": (WorkerSpec("w0", capacity_fps=20), broken)})
    fleet.retries = 1
    (a,) = fleet.streams
    fleet._schedule()
    assert a.state is T and a.error == "cannot open rtsp://x" and a.attempts == 1
    a.retry_at = 0.0  # due now
    fleet._schedule()
    assert a.state is F and a.attempts == 2 and fleet.members[0].alive
    assert [e["event"] for e in fleet.events] == ["stream_retry", "stream_failed"]
    assert "gave up after 2 tries" in fleet.events[-1]["message"]
