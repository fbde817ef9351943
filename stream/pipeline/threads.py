"""Thread settings for processes that run the pipeline.

The pipeline already keeps every core busy with its own stage threads. torch's OpenMP pool
is then a liability: by default each OpenMP worker spins for a while after every parallel
region, waiting for the next one. The post-processing stage calls torch every frame, so its
workers spin through most of the frame, on cores that decode, inference and encoding need.
Measured on the 2-core EPYC (default model, 768x432 video, 600 frames): one spinning OpenMP
worker burnt 6.6 ms of CPU per frame, and the tracking stage's own thread 5.2 ms instead of
3.3 ms. ``OMP_WAIT_POLICY=PASSIVE`` puts the workers to sleep at once instead.

OpenMP reads the variable when torch loads it, so it must be set before ``import torch``.
The ``detstream`` commands that run the pipeline do that; Python programs that embed the
pipeline should set it in their environment (or call :func:`prefer_passive_openmp` first).
Training keeps the default: one thread running torch back to back gains from spinning.
"""

from __future__ import annotations

import os
import sys

_VARIABLE = "OMP_WAIT_POLICY"


def prefer_passive_openmp() -> bool:
    """Ask OpenMP to sleep rather than spin between parallel regions, unless the user chose.

    Returns:
        True when OpenMP will run passive in this process: the variable is (now) PASSIVE and
        torch was not loaded before it was set.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault(_VARIABLE, "PASSIVE")
        return os.environ[_VARIABLE].upper() == "PASSIVE"
    return False
