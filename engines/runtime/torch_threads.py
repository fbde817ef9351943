"""Torch's intra-op thread count for the calling thread alone.

With torch's OpenMP parallel backend (the Linux and Windows wheels) the count is kept per
thread: a pipeline stage can post-process on one thread while a CPU inference worker uses
several. Threads read the process-wide count when they first run a torch op, so a thread that
needs a particular count sets it itself. With any other backend the count is shared by the
whole process, and nothing is changed.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def per_thread_counts() -> bool:
    """Whether torch keeps its intra-op thread count per thread (OpenMP backend)."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def use_torch_threads(count: int) -> None:
    """Run this thread's torch ops on ``count`` threads (when counts are per thread)."""
    count = max(1, count)
    if per_thread_counts() and torch.get_num_threads() != count:
        torch.set_num_threads(count)
