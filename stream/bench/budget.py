"""CPU budgets of the stages other than inference, in CPU milliseconds per frame.

Next to a GPU engine these stages decide the frame rate, and on a small CPU they take cores
from inference, so each has a budget that ``detstream bench pipeline`` checks every run. A
budget is ``fixed_ms + per_megapixel_ms * frame megapixels``: decoding, preprocessing, drawing
and encoding grow with the frame, post-processing and tracking mostly with the detections (the
tracker looks at a 320-pixel-wide view of the frame whatever its size).

The figures were set from the stages measured on the 2-core development machine (AMD EPYC,
BENCHMARKS.md, "Lean stages") at 640x272, 768x432, 1280x720 and 1920x1080, with 10 to 30 %
headroom (preprocessing grows with the model's fixed input more than with the frame). CPU time
counts every thread of the process, so a library's own thread pool is charged to its stage.
A slower CPU (the Intel Xeon of the same machine kind runs inference 2x slower) can exceed
them without a regression; compare runs on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """CPU milliseconds a stage may take per frame: ``fixed_ms + per_megapixel_ms * MP``."""

    fixed_ms: float
    per_megapixel_ms: float

    def ms(self, width: int, height: int) -> float:
        return self.fixed_ms + self.per_megapixel_ms * width * height / 1e6


#: Per stage; ``encode`` is x264 at the default preset (veryfast).
STAGE_BUDGETS: dict[str, Budget] = {
    "decode": Budget(0.5, 3.6),  # H.264 in software and the conversion to BGR
    "preprocess": Budget(2.3, 0.3),  # mostly the fixed-size model input
    "postprocess_track": Budget(3.8, 0.3),
    "draw": Budget(0.3, 0.4),
    "encode": Budget(2.5, 8.0),
}


def budgets_for(width: int, height: int) -> dict[str, float]:
    """Each stage's budget for frames of ``width`` x ``height``, in CPU ms per frame."""
    return {name: round(budget.ms(width, height), 2) for name, budget in STAGE_BUDGETS.items()}


def over_budget(cpu_ms: dict[str, float], width: int, height: int) -> list[str]:
    """The stages of ``cpu_ms`` (CPU ms per frame) that took more than their budget."""
    budgets = budgets_for(width, height)
    return [name for name, ms in cpu_ms.items() if name in budgets and ms > budgets[name]]
