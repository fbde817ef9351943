"""Outputs: annotated video, JSON Lines, MOTChallenge results, a window, a callback."""

from detstream.stream.sinks.base import Sink, StopRequested
from detstream.stream.sinks.display import DisplaySink
from detstream.stream.sinks.files import JsonlSink, MotSink, VideoSink
from detstream.stream.sinks.summary import SummarySink

__all__ = ["DisplaySink", "JsonlSink", "MotSink", "Sink", "StopRequested", "SummarySink",
           "VideoSink"]
