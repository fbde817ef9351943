"""``detstream bench alerts`` (issue 37, alerts under faults) at a tiny scale: the real
pipeline on a paced scene full of crossings, a real HTTP server on 127.0.0.1 that goes down and
comes back, and Debian's mosquitto killed and restarted under a persistent subscriber. Every
event the pipeline produced arrives, in order. The MQTT case fails, not skips, without
mosquitto (``make test`` installs it; paho-mqtt is a dev dependency)."""

from __future__ import annotations

import json
import os

import pytest

from detstream.stream.bench.alert_targets import MOSQUITTO
from detstream.stream.bench.alerts import compare


def test_a_target_down_then_back_gets_every_event_in_order(tmp_path):
    """The whole job, 4 s a case, the target down from 1 s to 2.5 s: nothing lost, in order,
    events produced during the outage delivered after it, retries counted."""
    from tests.conftest import run_main

    assert os.path.exists(MOSQUITTO), "mosquitto is missing: run make mqtt (apt-get install)"
    out = tmp_path / "alerts.json"
    result = run_main("bench", "alerts", "--seconds", "4", "--down-at", "1", "--outage", "1.5",
                      "--size", "320x240", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert list(figures["cases"]) == ["baseline", "webhook", "mqtt"]
    for name in ("webhook", "mqtt"):
        case = figures["cases"][name]
        events, sink = case["events"], case["sink"]
        assert events["produced"] > 20 and case["outage"]["produced_during"] > 0, name
        assert events["lost"] == 0 and events["in_order"] and events["unexpected"] == 0, name
        assert sink["retries"] >= 1 and sink["dropped"] == sink["pending"] == 0, name
        assert sink["delivered"] == events["produced"], name
        assert case["outage"]["catch_up_s"] is not None and case["lost_past_sink"] == 0, name
        assert figures["targets"][f"{name}: events lost"]["met"], name
    assert figures["cases"]["webhook"]["events"]["duplicates"] == 0  # HTTP: once each
    assert figures["cases"]["baseline"]["pipeline"]["frames_out"] > 60
    assert "webhook: events lost" in result.stdout and "catch-up s" in result.stdout


A, B, C = ((k, "door", "line_crossed", k, "in") for k in range(3))


@pytest.mark.parametrize("received, expected", [
    ([A, B, C], {"lost": 0, "duplicates": 0, "unexpected": 0, "in_order": True}),
    ([A, C], {"lost": 1, "duplicates": 0, "unexpected": 0, "in_order": True}),
    ([A, A, B, B, C], {"lost": 0, "duplicates": 2, "unexpected": 0, "in_order": True}),
    ([A, C, B], {"lost": 0, "duplicates": 0, "unexpected": 0, "in_order": False}),
    ([B, A, B, C], {"lost": 0, "duplicates": 1, "unexpected": 0, "in_order": False}),
    ([A, B, (9, "x", "zone_left", 9, None), C],
     {"lost": 0, "duplicates": 0, "unexpected": 1, "in_order": True}),
])
def test_arrivals_are_compared_event_by_event(received, expected):
    result = compare([A, B, C], received)
    assert {key: result[key] for key in expected} == expected
    assert result["produced"] == 3 and result["received"] == len(received)


def test_an_outage_that_leaves_no_time_after_the_return_is_one_line():
    from tests.conftest import run_main

    result = run_main("bench", "alerts", "--seconds", "10", "--down-at", "5", "--outage", "5")
    assert result.returncode == 2 and "no time after the return" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_cooldown_forgets_tracks_past_their_cooldown():
    """A run of days meets new track ids all the time: the cooldown keeps only what can
    still hold an event back (found while measuring alerts; it grew without bound), and
    still holds back a repeat after letting the old ones go."""
    import numpy as np

    from detstream.stream.analytics import RuleEvent
    from detstream.stream.pipeline.packet import FramePacket
    from detstream.stream.sinks.alerts import COOLDOWN_KEYS, AlertSink

    class Counted(AlertSink):
        name = "counted"

        def _send(self, record: dict) -> None:
            return None

    def frame(k: int, track: int) -> FramePacket:
        event = RuleEvent("line_crossed", "door", track, 0, "person", k, k / 30.0, "in")
        return FramePacket(0, k, k / 30.0, 0.0, np.zeros((2, 2, 3), np.uint8), events=[event])

    sink = Counted(cooldown_s=5.0, capacity=100_000)
    try:
        for k in range(5 * COOLDOWN_KEYS):  # a new track every frame
            sink.write(frame(k, k))
        assert len(sink._last) < 2 * COOLDOWN_KEYS
        last = 5 * COOLDOWN_KEYS - 1
        sink.write(frame(last + 30, last))  # the newest track again, 1 s later: held back
        assert sink.report()["suppressed"] == 1
    finally:
        sink.close()
