"""Scores of what the live side produces: multi-object tracking metrics."""
