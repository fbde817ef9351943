"""The verbs of the ``detstream`` command, one module each."""
