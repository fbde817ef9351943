"""How far better appearance alone could take botsort on ``bench mot``'s held-out scenes.

The sixteen scenes of ``detstream bench mot --kinds all --scenes 16`` are rendered once and
run through the model (its detections, camera motion and scene cuts measured once, as
``bench tune`` does). Botsort then tracks the same detections three ways:

- ``model``: with the model's own embeddings, as ``bench mot`` does;
- ``perfect identities``: every detection that covers a truth object (IoU >= 0.3) gets that
  object's own random unit vector, plus a little noise (cosine ~0.92 between two sightings),
  and every other detection a fresh random vector: appearance that never confuses two
  objects, and that tells false boxes from real ones;
- ``IoU alone``: no appearance.

The gap between ``model`` and ``perfect identities`` is what a better embedding head could
still gain; what ``perfect identities`` leaves short of a target is the detector's share.

    python scripts/identity_ceiling.py --json identity_ceiling.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from detstream.engines.boxes import iou_matrix
from detstream.engines.data.mot import read_mot
from detstream.engines.data.synthetic.config import parse_size
from detstream.engines.metrics.mot import evaluate_mot
from detstream.stream.bench.mot import SCENE_KINDS, model_detector, scene_configs
from detstream.stream.bench.tune import TrackedSequence, measure_scene, track_sequence

METRICS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")


def with_identities(sequence: TrackedSequence, truth: dict, dim: int, noise: float,
                    rng: np.random.Generator) -> TrackedSequence:
    """``sequence`` with each detection's embedding replaced as described at the top."""
    bases: dict[int, np.ndarray] = {}
    frames = []
    for index, dets in enumerate(sequence.detections, start=1):
        vectors = rng.normal(size=(len(dets), dim))
        gt = truth.get(index)
        if gt is not None and len(gt) and len(dets):
            iou = iou_matrix(dets.boxes.astype(np.float64), gt.boxes.astype(np.float64))
            for row in range(len(dets)):
                j = int(iou[row].argmax())
                if iou[row, j] >= 0.3:
                    identity = int(gt.track_ids[j])
                    if identity not in bases:
                        base = rng.normal(size=dim)
                        bases[identity] = base / np.linalg.norm(base)
                    vectors[row] = bases[identity] + noise * rng.normal(size=dim) / np.sqrt(dim)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        frames.append(dets.replace(data={**dets.data, "embedding": vectors.astype(np.float32)}))
    return replace(sequence, detections=frames)


def score(sequences: list[TrackedSequence], options: dict, root: Path, tag: str) -> dict:
    """Botsort with ``options`` on every sequence; TrackEval's combined scores."""
    pred = root / "pred" / tag
    pred.mkdir(parents=True)
    for sequence in sequences:
        track_sequence(sequence, options, pred / f"{sequence.scene}.txt")
    combined, _ = evaluate_mot(root / "gt", pred)
    return {m: getattr(combined, m) for m in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    configs = scene_configs(args.scenes, 300, parse_size("640x360"), 30.0,
                            kinds=tuple(SCENE_KINDS))
    detector = model_detector(args.model, "auto", 0.1)
    rng = np.random.default_rng(0)
    report = {}
    with tempfile.TemporaryDirectory(prefix="detstream-ceiling-") as tmp:
        root = Path(tmp)
        model, perfect = [], []
        for config in configs:
            found = [s for s in measure_scene(config, detector, root / "gt") if s.stream == "model"]
            truth = read_mot(root / "gt" / found[0].scene / "gt" / "gt.txt")
            model += found
            perfect += [with_identities(s, truth, 32, args.noise, rng) for s in found]
            print(f"scene {found[0].scene}: measured", flush=True)
        report["model"] = score(model, {}, root, "model")
        report["perfect identities"] = score(perfect, {}, root, "perfect")
        report["IoU alone"] = score(model, {"appearance": False}, root, "iou")
    print(f"{'appearance':<20}" + "".join(f"{m:>8}" for m in METRICS))
    for name, figures in report.items():
        print(f"{name:<20}" + "".join(f"{figures[m]:>8.3f}" if isinstance(figures[m], float)
                                      else f"{figures[m]:>8}" for m in METRICS))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
