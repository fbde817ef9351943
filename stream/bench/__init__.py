"""Every ``detstream bench`` job (figures recorded in BENCHMARKS.md), one module per job.

- ``engine`` — ``bench engine``: inference alone per backend, input size and batch.
- ``pipeline`` — ``bench pipeline``: each stage alone, the ceiling, the sequential loop, the
  pipelined run and its latency; with ``--replay-ms`` the pipeline around a replayed model.
- ``multistream`` — ``bench multistream``: one batched multi-stream process against N
  separate single-stream processes.
- ``live`` — ``bench live``: a paced live source; latency against processing time, drift.
- ``tracker`` — ``bench tracker``: tracker and camera-motion frames per second.
- ``mot`` — ``bench mot``: tracking accuracy on held-out synthetic scenes.
- ``soak`` — ``bench soak``: the whole run for minutes or hours; memory slope and peaks.
- ``common`` — what they share: the model to open, wall and CPU clocks, the JSON file.

Each job module has one function per measured step, a ``bench_*`` function that runs the job
and returns its figures as a JSON-able dict, and the printer of its table. Nothing is imported
here, so a command imports only the job it runs (``bench demo`` lives in ``demo/bench.py``).
"""
