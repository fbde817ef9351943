"""Outputs: annotated video, JSON Lines, MOTChallenge results, a window, a callback."""

from stream.sinks.base import Sink, StopRequested
from stream.sinks.display import DisplaySink
from stream.sinks.files import JsonlSink, MotSink, VideoSink
from stream.sinks.summary import SummarySink

__all__ = ["DisplaySink", "JsonlSink", "MotSink", "Sink", "StopRequested", "SummarySink",
           "VideoSink"]
