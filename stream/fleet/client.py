"""Talking to a running fleet's endpoint (see :mod:`detstream.stream.fleet.server`): what
``detstream fleet status|add|remove|add-worker`` and the demo's Fleet tab use."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from detstream.engines.errors import UserInputError
from detstream.stream.fleet import DEFAULT_URL

__all__ = ["DEFAULT_URL", "ask", "stream_rows", "worker_rows"]


def ask(url: str, path: str = "/status", method: str = "GET", body: dict | None = None,
        timeout: float = 150.0) -> dict:
    """One request to the fleet at ``url``; its JSON answer.

    Raises:
        UserInputError: the fleet refused (its one-line reason), or nothing answers there.
    """
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]
        except (ValueError, KeyError):
            message = f"HTTP {exc.code}"
        raise UserInputError(message) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserInputError(f"no fleet answers at {url} ({reason}); start one with "
                             "'detstream fleet run' or give its --url") from None


def stream_rows(state: dict) -> list[list]:
    """One row per stream: name, state, worker, FPS, p50 latency (ms), frames out, dropped,
    reconnects, moves, and a note (its error, or why it waits)."""
    rows = []
    for s in state.get("streams", []):
        latency = (s.get("latency_ms") or {}).get("p50")
        source = s.get("source") or {}
        rows.append([s["name"], s["state"], s.get("worker") or "-", round(s["fps"], 1),
                     None if latency is None else round(latency),
                     s["frames_out"], s["frames_dropped"], source.get("reconnects", 0),
                     s.get("restarts", 0), s.get("error") or s.get("waiting_for") or ""])
    return rows


STREAM_COLUMNS = ["stream", "state", "worker", "fps", "p50 ms", "out", "dropped", "reconnects",
                  "moves", "note"]


def worker_rows(state: dict) -> list[list]:
    """One row per worker: name, alive, load and capacity (frames/s), streams, model and
    device."""
    rows = []
    for w in state.get("workers", []):
        capacity = max(w["capacity_fps"].values(), default=0.0)
        rows.append([w["name"], "yes" if w["alive"] else "LOST", round(w["load_fps"], 1),
                     round(capacity, 1), ", ".join(w["streams"]) or "-",
                     w.get("device") or w.get("model") or "-"])
    return rows


WORKER_COLUMNS = ["worker", "alive", "load fps", "capacity fps", "streams", "model on device"]
