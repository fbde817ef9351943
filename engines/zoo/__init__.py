"""Named models: the embedded default and the checkpoints users pass by path."""

from detstream.engines.zoo.registry import DEFAULT_WEIGHTS, load_model

__all__ = ["DEFAULT_WEIGHTS", "load_model"]
