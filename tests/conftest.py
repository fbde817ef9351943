"""Shared fixtures: paths to the read-only shared data, helpers to run the CLI, and how many
pytest-xdist workers ``make test`` starts.

``make test`` runs ``pytest -n auto --dist loadscope --no-loadscope-reorder``: each test
module goes to one worker whole, so its tests run one after another, as they were written to,
and its module-scoped fixtures (a demo server and Chromium, torchvision models, rendered clips)
are built once; the slowest modules are handed out first (:data:`SLOW_FIRST`), so that no
worker is left with a long one while the others have finished.
(``--dist loadgroup`` with ``xdist_group`` marks would allow other groupings, but pytest-xdist
3.8 cannot group under pytest 9.2: it marks groups by rewriting node ids, which pytest 9.2 no
longer lets it do, and silently spreads the tests as ``--dist load`` would; pytest-xdist
issue 1386.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: pytest-xdist workers sharing the cores (1 without xdist).
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    # Each worker's torch, and the commands its tests start, would spread their sums over
    # every core while the other workers do the same, and OpenMP's threads then wait for
    # descheduled peers: the overfit test took 206 s beside a busy worker instead of 62 s
    # alone; test_resume's three training runs, beside busy processes, 58 s on two threads
    # and 39 s on one. So torch in a worker and in what it starts gets its share of the
    # cores, and waiting threads sleep instead of spinning (choices made in the environment
    # are kept; commands that set their own thread counts still do).
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(1, len(os.sched_getaffinity(0)) // WORKERS)))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2  # noqa: E402  (after the OMP_ variables: OpenMP reads them when torch loads)
import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
#: The thread counts a fresh interpreter starts with, in this environment (a test may change
#: this one's: a torch backend opened with ``threads=1``, a pipeline's single-threaded OpenCV).
FRESH_THREADS = {"torch": torch.get_num_threads(), "cv2": cv2.getNumThreads()}


def shared_path(relative: str) -> Path:
    """A path inside ``../shared/data``; skips the test with a reason when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (tests read it from ../shared/data)")
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``detstream ARGS`` in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "detstream", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def run_main(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``detstream ARGS`` through the command line's ``main()`` in this interpreter.

    For tests of what a command computes, writes and prints: the same parser, handler, return
    code (argparse's exit included) and text on stdout and stderr as :func:`run_cli`, without
    a fresh interpreter's 3-4 s of imports. An exception ``main`` lets through is printed as
    Python would print it, with return code 1. Like :func:`run_cli` it runs in the repository
    folder, with the thread counts a fresh interpreter has (:data:`FRESH_THREADS`); the
    working folder, the environment and the thread counts are put back afterwards. Tests of
    the process itself (signals, a kill, what a fresh interpreter reads from its environment,
    the exit code a user's shell sees, a message nothing else may add a line to) use
    :func:`run_cli`.
    """
    import contextlib
    import io
    import traceback

    from detstream.stream.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd, environ = os.getcwd(), dict(os.environ)
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    os.chdir(REPO)
    torch.set_num_threads(FRESH_THREADS["torch"])
    cv2.setNumThreads(FRESH_THREADS["cv2"])
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: a mistake (2) or --help (0)
                code = 0 if exc.code is None else exc.code
                if not isinstance(code, int):  # sys.exit("message")
                    print(code, file=sys.stderr)
                    code = 1
            except Exception:  # as the interpreter reports an uncaught exception
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
    return subprocess.CompletedProcess(["detstream", *args], code, out.getvalue(),
                                       err.getvalue())


#: Most workers ``-n auto`` starts: the tests start subprocesses, Ray, Chromium and torch
#: threads of their own, so more workers than this only make them wait on each other.
MAX_WORKERS = 4


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook; absent without it
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core this process may use, at most :data:`MAX_WORKERS`."""
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


#: The modules that take longest (``make test --durations``, seconds of test time on the 2-core
#: development machine under -n 2, in this order: fleet 187, demo browser 114, pipeline 100,
#: model downloads 53, torchvision models 49, overfit 47, ..., run resume 25, ddp 23): started
#: first. The others, under 20 s each, follow in file order.
SLOW_FIRST = ("test_fleet.py", "test_demo_browser.py", "test_pipeline.py",
              "test_model_downloads.py", "test_torchvision_models.py", "test_overfit.py",
              "test_long_runs.py", "test_cli.py", "test_multistream.py", "test_gpu_parts.py",
              "test_bench.py", "test_engines.py", "test_bad_inputs.py", "test_resume.py",
              "test_source_faults.py", "test_train.py", "test_embedding.py",
              "test_run_resume.py", "test_ddp.py", "test_int8.py", "test_late_tracking.py",
              "test_motion_gate.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules of :data:`SLOW_FIRST` first, in its order; each module's tests keep theirs."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
