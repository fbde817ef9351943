"""``detstream bench alerts``: alerts under faults (issue 37's last target).

The target: a webhook server that is down for 30 s, then back, loses no event (all are
delivered once it returns, in order), and the pipeline's FPS does not move beyond noise; an
MQTT broker restart the same.

A synthetic scene full of crossings (:data:`SCENE`, a static camera) is played as a paced live
source at 30 fps and run through :func:`~detstream.stream.session.build` as ``detstream run``
runs it, with four counting lines and two watched areas (:func:`scene_rules`: tens of events
a second) and ``alert_cooldown=0``, so that every event is sent. Each case runs the same
scene for ``seconds``:

- ``baseline``: no alert output;
- ``webhook``: ``--webhook`` to an HTTP server on 127.0.0.1 (:class:`WebhookServer`) that
  keeps every body in arrival order; at ``down_at`` seconds it closes its socket (connections
  are refused) and ``outage`` seconds later listens again on the same port;
- ``mqtt``: ``--mqtt`` to Debian's mosquitto on a free loopback port (:class:`MqttTarget`),
  with a subscriber (paho-mqtt, QoS 1, a persistent session under a fixed client id) keeping
  every message; at ``down_at`` the broker is killed (SIGKILL, no goodbye) and ``outage``
  seconds later started again on the same port. The broker saves its sessions every second
  (``autosave_interval 1``), so the subscriber's subscription outlives the kill, and the
  messages published while it is reconnecting wait for it in the broker.

The events the pipeline produced (its packets' rule events, in order) are compared with what
arrived, by ``(frame, rule, kind, track_id, direction)`` (:func:`compare`): lost, duplicated,
in order; the sink's own report (queued, delivered, retries, dropped, pending); the time from
the target's return until the last event produced before it arrived (``catch_up_s``). The
MQTT case also sets the sink's ``delivered`` (acknowledged by the broker) against what the
subscriber received: an event acknowledged but never received was lost by the broker, not by
us. The pipeline's figures (output FPS over the run and in each phase: before, during and
after the outage; frames dropped by the camera; latency; the detector's frames a second) are
set against the baseline's.

The receivers (the HTTP server; the MQTT subscriber, beside its broker) run in a process of
their own (:mod:`~detstream.stream.bench.alert_targets`), as they would on another machine:
what the pipeline's process pays is the alert output alone. Its threads' CPU time (the
delivery thread, and paho's network thread for MQTT) is reported too. Times are
``time.monotonic()`` seconds, one clock for both processes.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from detstream.stream.analytics import RuleEvent
from detstream.stream.bench.alert_targets import Arrival, Receiver, mosquitto
from detstream.stream.bench.common import Log, quiet
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.run_config import RunConfig
from detstream.stream.session import BackendCache, build
from detstream.stream.sinks.alerts import AlertSink

#: The cases, in the order they run (the baseline first: the others are set against it).
CASES = ("baseline", "webhook", "mqtt")
#: The scene: a static 30 fps camera with a crowd, many of them entering in pairs timed to
#: cross (tens of rule events a second on :func:`scene_rules`).
SCENE = {"fps": 30, "objects": 25, "crossings": 3, "min_size": 30, "max_size_frac": 0.3}
#: A paced scene ends by itself after its frames; the run's time limit allows this more.
END_GRACE_S = 10.0
#: Longest wait for the frames in flight once a run's time is up.
DRAIN_S = 10.0
#: Seconds the alert output may take to hand over its queue when the run ends.
ALERT_DRAIN_S = 30.0
#: Longest wait, once the run has ended, for the receiver to get what the sink delivered.
SETTLE_S = 10.0
#: FPS within this of the baseline's counts as unchanged: a paced 30 fps source that keeps up
#: outputs 30 frames a second in every phase; 0.5 is 15 frames passed over in a 30 s outage.
FPS_NOISE = 0.5
#: Frames of the warm-up run (the model's first calls are slow; every case starts warm).
WARM_FRAMES = 30

#: An event's identity: ``(frame, rule, kind, track_id, direction)``.
Key = tuple[int, str, str, int, str | None]


def event_key(event: RuleEvent) -> Key:
    """The identity of a rule event as the pipeline produced it."""
    return (event.frame, event.rule, event.kind, event.track_id, event.direction)


def record_key(record: dict) -> Key:
    """The identity of an event as an alert output sent it (its JSON object)."""
    return (record["frame"], record["rule"], record["event"], record["track_id"],
            record.get("direction"))


def scene_rules(width: int, height: int) -> tuple[list[str], list[str]]:
    """Four lines down at a fifth of the width apart, two across at a third and two thirds of
    the height, and two areas (the left and right halves, inset), for a ``width`` x
    ``height`` frame."""
    w, h = width, height
    lines = [f"v{i}:{f * w:g},{0.04 * h:g},{f * w:g},{0.96 * h:g}"
             for i, f in enumerate((0.2, 0.4, 0.6, 0.8))]
    lines += [f"h{i}:{0.03 * w:g},{f * h:g},{0.97 * w:g},{f * h:g}"
              for i, f in enumerate((1 / 3, 2 / 3))]
    areas = [f"{name}:{x0 * w:g},{0.12 * h:g} {x1 * w:g},{0.12 * h:g} {x1 * w:g},{0.88 * h:g} "
             f"{x0 * w:g},{0.88 * h:g}" for name, x0, x1 in (("left", 0.06, 0.47),
                                                            ("right", 0.53, 0.94))]
    return lines, areas


def scene_uri(size: tuple[int, int], seconds: float, seed: int) -> str:
    """The benchmark's scene (:data:`SCENE`), ``seconds`` of it, ``size`` (width, height)."""
    width, height = size
    frames = max(1, round(seconds * SCENE["fps"]))
    params = "&".join(f"{key}={value}" for key, value in SCENE.items())
    return (f"synthetic://?size={width}x{height}&camera_motion=0&seed={seed}&frames={frames}"
            f"&{params}")


def thread_cpu_s(native_id: int | None) -> float | None:
    """CPU seconds (user and system) a thread of this process has used so far (Linux's
    ``/proc``; ``None`` elsewhere, or for a thread that has gone)."""
    try:
        stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after the name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def alert_threads_cpu_s(sink: AlertSink) -> float | None:
    """CPU seconds of the alert output's threads: its delivery thread (named after the sink)
    and paho's network thread (MQTT)."""
    times = [thread_cpu_s(t.native_id) for t in threading.enumerate()
             if t.name == sink.name or t.name.startswith("paho-mqtt-client-")]
    known = [t for t in times if t is not None]
    return round(sum(known), 2) if known else None


def machine_busy_s() -> float | None:
    """CPU seconds the machine's cores have been busy since it started, all together
    (Linux's ``/proc/stat``; ``None`` elsewhere)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """Cores kept busy outside this process over a block (``cores``; ``None`` where
    :func:`machine_busy_s` cannot tell): the receiver's process, the broker, and whatever
    else runs on the machine. A case measured beside other work says so."""

    cores: float | None = None

    def __enter__(self) -> OtherLoad:
        self._start = (machine_busy_s(), sum(os.times()[:2]), time.monotonic())
        return self

    def __exit__(self, *exc: object) -> None:
        busy, own, wall = machine_busy_s(), sum(os.times()[:2]), time.monotonic()
        if busy is not None and self._start[0] is not None and wall > self._start[2]:
            others = (busy - self._start[0]) - (own - self._start[1])
            self.cores = round(max(0.0, others) / (wall - self._start[2]), 2)


@dataclass
class CaseRun:
    """What one case's run left (times are ``time.monotonic()`` seconds).

    Attributes:
        started: when the pipeline started.
        produced: each rule event the pipeline produced, in order: when it left the output
            stage (every sink had it) and its identity.
        done: when each frame was finished; ``latency_ms`` its capture-to-finished time.
        report: the pipeline's report.
        sink: the alert output's report (``None``: the baseline).
        sink_cpu_s: CPU seconds of the alert output's threads over the run.
        other_cores: cores kept busy outside this process meanwhile (:class:`OtherLoad`).
        received: what the target received, in arrival order.
        down_at, back_at: when the target went down and came back.
    """

    started: float
    produced: list[tuple[float, Key]] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    sink: dict | None = None
    sink_cpu_s: float | None = None
    other_cores: float | None = None
    received: list[Arrival] = field(default_factory=list)
    down_at: float | None = None
    back_at: float | None = None


def warm(config: RunConfig, backends: BackendCache) -> None:
    """A short unmeasured run of ``config``'s source: the model ``build`` picks for it is
    opened into ``backends`` and has made its slow first calls before any case starts."""
    build(replace(config, max_frames=WARM_FRAMES), backends=backends).pipeline.run()


def run_case(case: str, config: RunConfig, seconds: float, down_at: float, outage: float,
             backends: BackendCache | None = None, log: Log = quiet) -> CaseRun:
    """Run ``config`` (a paced live source and its rules) for ``seconds`` with the target of
    ``case`` (:data:`CASES`), which goes down ``down_at`` seconds after the start for
    ``outage`` seconds.

    Raises:
        StageError: a stage failed.
        UserInputError: the mqtt case without mosquitto or paho-mqtt.
    """
    with tempfile.TemporaryDirectory(prefix="detstream-alerts-") as tmp:
        receiver = None if case == "baseline" else Receiver(case, Path(tmp))
        try:
            return _run(receiver, case, config, seconds, down_at, outage, backends, log)
        finally:
            if receiver is not None:
                receiver.close()


def _run(receiver: Receiver | None, case: str, config: RunConfig, seconds: float,
         down_at: float, outage: float, backends: BackendCache | None, log: Log) -> CaseRun:
    run = CaseRun(started=0.0)

    def keep(packet: FramePacket) -> None:
        now = time.monotonic()
        run.done.append(now)
        run.latency_ms.append((packet.done - packet.captured) * 1000.0)
        run.produced.extend((now, event_key(e)) for e in packet.events
                            if isinstance(e, RuleEvent))

    options = receiver.options() if receiver is not None else {}
    session = build(replace(config, alert_cooldown=0.0, **options), on_packet=keep,
                    backends=backends)
    pipeline = session.pipeline
    sink = next((s for s in pipeline.sinks if isinstance(s, AlertSink)), None)
    if sink is not None:
        sink.drain_s = ALERT_DRAIN_S  # a run that ends on a backlog hands it all over
    state = "up"
    others = OtherLoad()
    try:
        with others:
            pipeline.start()
            run.started = time.monotonic()
            while not pipeline.wait(0.05):
                elapsed = time.monotonic() - run.started
                if state == "up" and elapsed >= down_at:
                    state = "down"
                    run.down_at = receiver.down() if receiver is not None else time.monotonic()
                    log(f"{case}: down at {run.down_at - run.started:.1f} s")
                elif state == "down" and elapsed >= down_at + outage:
                    state = "back"
                    run.back_at = receiver.up() if receiver is not None else time.monotonic()
                    log(f"{case}: back at {run.back_at - run.started:.1f} s")
                if elapsed >= seconds + END_GRACE_S:
                    pipeline.drain("the benchmark's time is up")
                    pipeline.wait(DRAIN_S)
                    break
        run.other_cores = others.cores
        if state == "down":  # the run ended first: the target returns for the drain
            run.back_at = receiver.up() if receiver is not None else time.monotonic()
        if sink is not None:
            run.sink_cpu_s = alert_threads_cpu_s(sink)  # while its threads still run
    finally:
        pipeline.close()  # closes the alert output: it delivers what it still holds
    if pipeline.error is not None:
        raise pipeline.error
    run.report = pipeline.report()
    if sink is not None and receiver is not None:
        run.sink = sink.report()
        deadline = time.monotonic() + SETTLE_S  # a subscriber gets them a little later
        while receiver.count() < run.sink["delivered"] and time.monotonic() < deadline:
            time.sleep(0.05)
        run.received = receiver.received()
    return run


def compare(produced: list[Key], received: list[Key]) -> dict:
    """What arrived against what was produced, event by event.

    ``lost``: produced events that never arrived; ``duplicates``: arrivals of an event beyond
    the times it was produced; ``unexpected``: arrivals of an event never produced;
    ``in_order``: each event's first arrival comes in the order it was produced.
    """
    made, got = Counter(produced), Counter(received)
    lost = sum(max(0, n - got[key]) for key, n in made.items())
    duplicates = sum(max(0, n - made[key]) for key, n in got.items() if key in made)
    unexpected = sum(n for key, n in got.items() if key not in made)
    firsts, seen = [], Counter()
    for key in received:  # the first arrivals of each event, as many as were produced
        if seen[key] < made[key]:
            seen[key] += 1
            firsts.append(key)
    wanted = [key for key in produced if got[key] > 0]
    remaining = Counter(got)
    expected = []
    for key in wanted:  # produced order, each as many times as it arrived (at most made)
        if remaining[key] > 0:
            remaining[key] -= 1
            expected.append(key)
    return {"produced": len(produced), "received": len(received),
            "distinct_received": len(produced) - lost, "lost": lost,
            "duplicates": duplicates, "unexpected": unexpected,
            "in_order": firsts == expected}


def _phase_fps(done: list[float], start: float, end: float) -> float | None:
    """Frames finished a second between ``start`` and ``end``."""
    if end <= start:
        return None
    return round(sum(start <= t < end for t in done) / (end - start), 2)


def case_figures(run: CaseRun, down_at: float, outage: float) -> dict:
    """A case's figures (see the module doc) from what its run left."""
    report = run.report
    down = run.down_at or run.started + down_at
    back = run.back_at or down + outage
    end = run.done[-1] if run.done else back
    latency = np.asarray(run.latency_ms or [0.0])
    pipeline = {
        "output_fps": report["fps"], "frames_in": report["frames_in"],
        "frames_out": report["frames_out"], "frames_dropped": report["frames_dropped"],
        "fps_before": _phase_fps(run.done, run.started, down),
        "fps_outage": _phase_fps(run.done, down, back),
        "fps_after": _phase_fps(run.done, back, end),
        "latency_ms_p50": round(float(np.percentile(latency, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(latency, 95)), 2),
        "detections_per_s": round(report["detection"]["frames_detected"]
                                  / max(report["seconds"], 1e-9), 2),
    }
    produced = [key for _, key in run.produced]
    figures: dict = {"pipeline": pipeline, "events": {"produced": len(produced)},
                     "other_cores": run.other_cores,
                     "events_per_s": round(len(produced) / max(end - run.started, 1e-9), 1),
                     "down_s": round(down - run.started, 2), "back_s": round(back - run.started, 2)}
    if run.sink is None:
        return figures
    received = [record_key(a.record) for a in run.received]
    figures["events"] = compare(produced, received)
    figures["sink"] = run.sink
    figures["sink_cpu_s"] = run.sink_cpu_s
    figures["sink_cpu_percent"] = (None if run.sink_cpu_s is None else
                                   round(100.0 * run.sink_cpu_s / max(end - run.started, 1e-9), 2))
    # Delivered to the broker (acknowledged) but never received: lost past our output.
    figures["lost_past_sink"] = max(0, run.sink["delivered"]
                                    - figures["events"]["distinct_received"])
    arrival: dict[Key, float] = {}
    for a in run.received:
        arrival.setdefault(record_key(a.record), a.at)
    backlog = [key for at, key in run.produced if at < back]
    during = sum(down <= at < back for at, _ in run.produced)
    late = [arrival[key] for key in backlog if key in arrival and arrival[key] >= back]
    steady = [(arrival[key] - at) * 1000.0 for at, key in run.produced
              if at < down and key in arrival]
    figures["outage"] = {
        "produced_during": during,
        "catch_up_s": round(max(late) - back, 2) if late else None,
        "first_after_return_s": round(min(late) - back, 2) if late else None,
        "lag_ms_p50_before": round(float(np.median(steady)), 2) if steady else None,
    }
    return figures


def judge(cases: dict, baseline: dict) -> dict:
    """The targets, per alert case: no event lost, in order, and output FPS over the run and
    during the outage within :data:`FPS_NOISE` of the baseline's."""
    targets = {}
    base = baseline["pipeline"]
    for name, case in cases.items():
        if name == "baseline":
            continue
        events, pipe = case["events"], case["pipeline"]
        targets[f"{name}: events lost"] = {"measured": events["lost"], "wanted": "0",
                                           "met": events["lost"] == 0}
        targets[f"{name}: in order"] = {"measured": events["in_order"], "wanted": "True",
                                        "met": events["in_order"]}
        for figure, label in (("output_fps", "output FPS"), ("fps_outage", "FPS in outage")):
            ours, theirs = pipe[figure], base[figure]
            gap = None if ours is None or theirs is None else round(ours - theirs, 2)
            targets[f"{name}: {label} - baseline"] = {
                "measured": gap, "wanted": f">= -{FPS_NOISE:g}",
                "met": gap is not None and gap >= -FPS_NOISE}
    return targets


def bench_alerts(config: RunConfig, cases: tuple[str, ...], seconds: float = 75.0,
                 down_at: float = 15.0, outage: float = 30.0, size: tuple[int, int] = (640, 480),
                 seed: int = 3737, log: Log = quiet,
                 on_case: Callable[[str, dict], None] | None = None) -> dict:
    """The baseline and each case of ``cases`` (``webhook``, ``mqtt``) on the same scene,
    their figures and the targets. ``config`` gives the model, tracker and other run
    options; the source, rules and alert outputs are the benchmark's.

    Raises:
        UserInputError: the mqtt case without mosquitto or paho-mqtt.
    """
    if "mqtt" in cases:
        mosquitto()  # before any work
    lines, areas = scene_rules(*size)
    run_config = replace(config, source=scene_uri(size, seconds, seed), live=True,
                         lines=lines, areas=areas, webhook=None, mqtt=None)
    backends = BackendCache()
    log("warming the model up")
    warm(run_config, backends)
    figures: dict = {}
    for case in ("baseline", *(c for c in CASES if c in cases and c != "baseline")):
        log(f"{case}: {seconds:g} s, {'no fault' if case == 'baseline' else 'down'} at "
            f"{down_at:g} s for {outage:g} s")
        run = run_case(case, run_config, seconds, down_at, outage, backends, log)
        figures[case] = case_figures(run, down_at, outage)
        if on_case is not None:
            on_case(case, figures[case])
    return {"size": list(size), "seconds": seconds, "down_at_s": down_at, "outage_s": outage,
            "seed": seed, "source": run_config.source, "lines": lines, "areas": areas,
            "model": config.model, "tracker": config.tracker, "fps_noise": FPS_NOISE,
            "cases": figures, "targets": judge(figures, figures["baseline"])}


def _shown(value: object) -> str:
    """A figure as the tables show it (``-``: none)."""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return "-" if value is None else str(value)


def print_alerts(result: dict) -> None:
    """The tables ``detstream bench alerts`` prints."""
    w, h = result["size"]
    print(f"{w}x{h} paced at 30 fps for {result['seconds']:g} s, model {result['model']}, "
          f"tracker {result['tracker']}; {len(result['lines'])} lines, {len(result['areas'])} "
          f"areas, cooldown 0; target down at {result['down_at_s']:g} s for "
          f"{result['outage_s']:g} s")
    print(f"{'events':<10}{'produced':>9}{'/s':>6}{'received':>9}{'lost':>6}{'dup':>5}"
          f"{'in order':>9}{'retries':>8}{'dropped':>8}{'pending':>8}{'catch-up s':>11}"
          f"{'sink CPU %':>11}")
    for name, case in result["cases"].items():
        ev, sink = case["events"], case.get("sink", {})
        print(f"{name:<10}{ev['produced']:>9}{case['events_per_s']:>6}"
              f"{_shown(ev.get('received')):>9}{_shown(ev.get('lost')):>6}"
              f"{_shown(ev.get('duplicates')):>5}{_shown(ev.get('in_order')):>9}"
              f"{_shown(sink.get('retries')):>8}{_shown(sink.get('dropped')):>8}"
              f"{_shown(sink.get('pending')):>8}"
              f"{_shown(case.get('outage', {}).get('catch_up_s')):>11}"
              f"{_shown(case.get('sink_cpu_percent')):>11}")
    print(f"{'pipeline':<10}{'FPS':>7}{'before':>8}{'outage':>8}{'after':>7}{'cam drop':>9}"
          f"{'det/s':>7}{'p50 ms':>8}{'p95 ms':>8}{'other cores':>12}")
    for name, case in result["cases"].items():
        pipe = case["pipeline"]
        print(f"{name:<10}{pipe['output_fps']:>7}{_shown(pipe['fps_before']):>8}"
              f"{_shown(pipe['fps_outage']):>8}{_shown(pipe['fps_after']):>7}"
              f"{pipe['frames_dropped']:>9}{pipe['detections_per_s']:>7}"
              f"{pipe['latency_ms_p50']:>8}{pipe['latency_ms_p95']:>8}"
              f"{_shown(case['other_cores']):>12}")
    print("(sink CPU %: the alert output's threads, of one core; other cores: busy outside the "
          "pipeline's process meanwhile, the receivers' and other programs')")
    if "mqtt" in result["cases"]:
        mqtt = result["cases"]["mqtt"]
        print(f"mqtt: the sink's delivered (acknowledged by the broker) "
              f"{mqtt['sink']['delivered']}, received by the subscriber "
              f"{mqtt['events']['distinct_received']} distinct; lost past the sink "
              f"{mqtt['lost_past_sink']}")
    print(f"{'target':<40}{'measured':>10}  {'wanted':<10}")
    for name, t in result["targets"].items():
        measured = "-" if t["measured"] is None else str(t["measured"])
        print(f"{name:<40}{measured:>10}  {t['wanted']:<10}{'met' if t['met'] else 'not met'}")
