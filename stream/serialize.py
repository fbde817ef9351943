"""Detections as JSON-ready values: one function for every output that writes boxes as text
(the JSON Lines sink, the demo page's results), so they never disagree on what a box says."""

from __future__ import annotations

from typing import Any

from detstream.engines.spec import Detections


def detections_to_json(detections: Detections | None, box_digits: int = 2,
                       score_digits: int = 4) -> list[dict[str, Any]]:
    """One dict per box, in row order, with plain Python values for :func:`json.dumps`.

    Each dict has, in this key order: ``box`` [x1, y1, x2, y2] (``xyxy``, frame pixels,
    rounded to ``box_digits``), ``score`` (rounded to ``score_digits``), ``class_id``,
    ``class`` (the class name, or the id as text when the record has no names) and
    ``track_id`` (``-1`` while untracked); then ``coasted: True`` on a box the tracker
    reports where it predicts an unseen object (the key is absent on every other box).

    Args:
        detections: the boxes (``None``: none, as on a packet the pipeline never detected on).
        box_digits: decimals kept in box coordinates (the JSON Lines file keeps 2).
        score_digits: decimals kept in scores (the JSON Lines file keeps 4).

    Returns:
        A list the length of ``detections`` (empty for ``None``).
    """
    if detections is None or not len(detections):
        return []
    # tolist() turns float32 into the same Python floats float() would, in one call per array.
    boxes = detections.boxes.tolist()
    scores = detections.scores.tolist()
    class_ids = detections.class_ids.tolist()
    track_ids = detections.track_ids.tolist()
    coasted = detections.data.get("coasted")
    items = []
    for k, label in enumerate(detections.labels):
        item: dict[str, Any] = {
            "box": [round(v, box_digits) for v in boxes[k]],
            "score": round(scores[k], score_digits),
            "class_id": class_ids[k], "class": label,
            "track_id": track_ids[k],
        }
        if coasted is not None and coasted[k]:
            item["coasted"] = True
        items.append(item)
    return items
