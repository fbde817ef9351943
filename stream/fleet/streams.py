"""What a fleet stream runs: the single-stream settings a worker opens it with."""

from __future__ import annotations

from dataclasses import replace

from detstream.stream.fleet.config import StreamSpec
from detstream.stream.run_config import RunConfig
from detstream.stream.session import journal_path


def run_config(stream: StreamSpec, resume: bool = False) -> RunConfig:
    """The single-stream run settings of ``stream`` (what ``detstream run`` would use), with
    its progress journal where ``detstream run`` keeps it, so that another worker can resume
    it after a crash (``resume``)."""
    config = replace(stream.run, source=stream.uri, output=stream.outputs.video,
                     save_json=stream.outputs.json, save_mot=stream.outputs.mot)
    return replace(config, journal=journal_path(config), resume=resume)
