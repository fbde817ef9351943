"""The real-time pipeline: packets, stages, the runner and its metrics."""
