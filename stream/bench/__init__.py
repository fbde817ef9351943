"""Every ``detstream bench`` job (figures recorded in BENCHMARKS.md), one module per job, each
with a light ``<job>_job.py`` beside it that declares the job's arguments and handler.

- ``engine`` — ``bench engine``: inference alone per backend, input size and batch.
- ``pipeline`` — ``bench pipeline``: each stage alone, the ceiling, the sequential loop, the
  pipelined run and its latency; with ``--replay-ms`` the pipeline around a replayed model.
- ``multistream`` — ``bench multistream``: one batched multi-stream process against N
  separate single-stream processes; with ``--live``, the paced cameras one machine holds at
  their frame rate.
- ``fleet`` — ``bench fleet``: the fleet on Ray against one plain multi-stream process, and
  the recovery from a killed worker.
- ``live`` — ``bench live``: paced live sources against the same frames read as a file:
  FPS, latency and its drift, tracking scores, the targets of issue 36.
- ``tracker`` — ``bench tracker``: tracker and camera-motion frames per second.
- ``mot`` — ``bench mot``: tracking accuracy on held-out synthetic scenes (``public``: on real
  MOTChallenge sequences).
- ``tune`` — ``bench tune``: tracker defaults by HOTA with leave-one-out (``tune_public``: on
  every real sequence under a folder).
- ``soak`` — ``bench soak``: the whole run for minutes or hours; memory slope and peaks.
- ``journal`` — ``bench journal``: what the progress journal costs per frame.
- ``budget`` — the CPU budgets per frame of the stages ``bench pipeline`` checks.
- ``cameras`` — the synthetic cameras of the live jobs and the URI edits they need (light).
- ``common`` — what the benchmarks share: the model to open, wall and CPU clocks.
- ``job`` — what the job declarations share: the job's parser, the argument groups several
  jobs take, the printers, the JSON file. No torch: ``detstream --help`` imports every
  ``*_job`` module.

Each benchmark module has one function per measured step, a ``bench_*`` function that runs the
job and returns its figures as a JSON-able dict, and the printer of its table. Nothing is
imported here, so a command imports only the job it runs (``bench demo`` lives in
``demo/bench.py``).
"""
