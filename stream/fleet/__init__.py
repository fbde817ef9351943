"""A fleet of cameras on Ray: many streams over several workers (machines, GPUs, CPU slots).

One Ray actor per inference service (:mod:`.worker`): each serves a group of streams through a
:class:`~detstream.stream.multisession.MultiSession`, with its own batching, trackers and
outputs. :mod:`.config` reads the cameras YAML, :mod:`.placement` decides which worker runs
which stream, :mod:`.controller` starts Ray, the workers and the streams and gathers their
statistics. Ray is an optional extra (``detstream[fleet]``): nothing here imports it until a
fleet is started, so ``stream`` imports without it.
"""

#: Where ``detstream fleet run`` serves its endpoint unless told otherwise.
DEFAULT_URL = "http://127.0.0.1:8780"
