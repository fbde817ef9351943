"""detstream's model side: models, data, training, export, engines and runtime backends."""

__version__ = "0.1.0"
