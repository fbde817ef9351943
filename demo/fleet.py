"""The Fleet tab: a running ``detstream fleet run`` seen from the page (``detstream demo
--fleet URL``), refreshed every :data:`REFRESH_S` seconds from its endpoint."""

from __future__ import annotations

from detstream.engines.errors import UserInputError
from detstream.stream.fleet.client import ask, stream_rows, worker_rows

#: Seconds between two looks at the fleet.
REFRESH_S = 2.0


def fleet_view(url: str) -> tuple[str, list[list], list[list], str]:
    """The summary line, the stream rows, the worker rows and the last events of the fleet
    at ``url``; when nothing answers there, a summary saying so and empty tables."""
    try:
        state = ask(url, timeout=5.0)
    except UserInputError as exc:
        return f"**{exc}**", [], [], ""
    streams = state.get("streams", [])
    running = sum(1 for s in streams if s["state"] == "running")
    alive = sum(1 for w in state.get("workers", []) if w["alive"])
    summary = (f"**{url}** — {running} of {len(streams)} streams running on {alive} of "
               f"{len(state.get('workers', []))} workers, {state['frames_out']} frames out, "
               f"{state['fps']:.1f} FPS in all")
    shortage = state.get("shortage") or {}
    if shortage:
        summary += f"; {len(shortage)} waiting for room"
    events = "\n".join(f"- {e['time']:.1f} s: {e['message']}"
                       for e in state.get("events", [])[-10:])
    return summary, stream_rows(state), worker_rows(state), events
