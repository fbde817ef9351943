"""The kinds of held-out synthetic scene ``detstream bench mot`` and ``bench tune`` render,
declared once (light to import: the jobs' arguments list them without loading the benchmark).
"""

from __future__ import annotations

#: Kinds of held-out scene: name → changes to the base scene (see
#: :func:`detstream.stream.bench.mot.scene_configs`). ``static`` and ``moving`` are the everyday
#: cases; the others are the hard ones trackers get wrong: paths that cross, long occlusions
#: behind wide posts, fast pans that reverse at the edges, a shaking hand-held camera, objects
#: that stop and go, and crowds.
SCENE_KINDS: dict[str, dict] = {
    "static": {},
    "moving": {"camera_motion": True},
    "crossings": {"crossings": 3.0},
    "occlusions": {"occluder_width": 3.0},
    "fast-pan": {"camera_motion": True, "pan_speed": 4.0},
    "shaky": {"camera_motion": True, "shake": 5.0},
    "stop-go": {"stops": 2.0},
    "crowd": {"objects": 25},
}
#: The kinds ``bench mot`` renders unless told otherwise (alternating, from seed 1000).
DEFAULT_KINDS = ("static", "moving")
