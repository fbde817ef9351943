"""Score the tracker's appearance settings on synthetic embeddings of known quality.

No model had an embedding head when appearance fusion was written, so the embeddings are made
from the truth: held-out ``bench mot`` scenes (640x360, 30 fps, one of each kind in turn)
are rendered once with ``bench tune``'s ``measure_scene`` (degraded truth, camera motion and
scene cuts measured once), and each degraded box gets the embedding of the truth object it
covers (IoU >= 0.3, else a random vector: a false box):

    normalise(base[object] + sigma * noise + share * base[occluder] + (1 - visibility) * clutter)

``base`` vectors of different objects share a common part (cosine ``rho``: same-class objects
look somewhat alike); ``noise`` is a fresh random vector of length ~1 (two sightings of one
object have cosine ~1 / (1 + sigma**2)); the object covering most of the box (``share`` of
it) is mixed in, and random clutter for the hidden part. Each setting is tracked with botsort
and scored with TrackEval over all scenes; every quality (sigma, rho) is drawn with several
seeds, and the means are printed.

    python scripts/appearance_grid.py --json appearance_grid.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from detstream.engines.boxes import box_area, intersection_matrix, iou_matrix
from detstream.engines.data.mot import read_mot
from detstream.engines.metrics.mot import evaluate_mot
from detstream.stream.bench.mot import scene_configs
from detstream.stream.bench.tune import TrackedSequence, measure_scene, track_sequence

KINDS = ("static", "moving", "crossings", "occlusions", "stop-go", "crowd")
SETTINGS: dict[str, dict] = {
    "IoU alone": {"appearance": False},
    "thresh 0.25 (BoT-SORT)": {"appearance_thresh": 0.25},
    "thresh 0.2": {"appearance_thresh": 0.2},
    "thresh 0.15": {"appearance_thresh": 0.15},
    "thresh 0.1": {"appearance_thresh": 0.1},
    "thresh 0.1, veto 0.35": {"appearance_thresh": 0.1, "appearance_veto": 0.35},
    "thresh 0.1, proximity 0.3": {"appearance_thresh": 0.1, "proximity_iou": 0.3},
}
METRICS = ("HOTA", "IDF1", "MOTA", "IDSW")


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def with_embeddings(sequence: TrackedSequence, truth: dict, dim: int, sigma: float, rho: float,
                    seed: int) -> TrackedSequence:
    """``sequence`` with ``data["embedding"]`` on every frame's detections (see the top)."""
    rng = np.random.default_rng(seed)
    common = unit(rng.normal(size=dim))
    bases: dict[int, np.ndarray] = {}

    def base(identity: int) -> np.ndarray:
        if identity not in bases:
            own = unit(rng.normal(size=dim))
            bases[identity] = unit(np.sqrt(rho) * common + np.sqrt(1 - rho) * own)
        return bases[identity]

    frames = []
    for index, dets in enumerate(sequence.detections, start=1):
        gt = truth.get(index)
        vectors = rng.normal(size=(len(dets), dim)) / np.sqrt(dim) * sigma
        boxes = dets.boxes.astype(np.float64)
        if gt is not None and len(gt) and len(dets):
            gt_boxes = gt.boxes.astype(np.float64)
            iou = iou_matrix(boxes, gt_boxes)
            share = intersection_matrix(boxes, gt_boxes) / np.maximum(box_area(boxes),
                                                                       1e-9)[:, None]
            for row in range(len(dets)):
                j = int(iou[row].argmax())
                if iou[row, j] < 0.3:
                    vectors[row] += unit(rng.normal(size=dim))
                    continue
                vectors[row] += base(int(gt.track_ids[j]))
                others = share[row].copy()
                others[j] = 0.0
                k = int(others.argmax())
                if others[k] > 0.1:
                    vectors[row] += others[k] * base(int(gt.track_ids[k]))
                hidden = 1.0 - float(gt.data["visibility"][j])
                vectors[row] += hidden * unit(rng.normal(size=dim))
        else:
            vectors += unit(rng.normal(size=(len(dets), dim)))
        frames.append(dets.replace(data={**dets.data,
                                         "embedding": unit(vectors).astype(np.float32)}))
    return replace(sequence, detections=frames)


def score(sequences: list[TrackedSequence], gt_root: Path, options: dict, pred: Path) -> dict:
    pred.mkdir(parents=True, exist_ok=True)
    for sequence in sequences:
        track_sequence(sequence, options, pred / f"{sequence.scene}.txt")
    combined, _ = evaluate_mot(gt_root, pred)
    return {m: getattr(combined, m) for m in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--sigmas", default="0.3,0.7,1.2")
    parser.add_argument("--rhos", default="0.3,0.5")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sigmas = [float(v) for v in args.sigmas.split(",")]
    rhos = [float(v) for v in args.rhos.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="detstream-appearance-") as tmp:
        root = Path(tmp)
        configs = scene_configs(args.scenes, args.frames, (640, 360), 30.0, first_seed=2000,
                                kinds=KINDS)
        scenes = []
        for config in configs:
            (sequence,) = measure_scene(config, None, root / "gt")
            truth = read_mot(root / "gt" / sequence.scene / "gt" / "gt.txt")
            scenes.append((sequence, truth))
        runs: list[dict] = []
        plain = [sequence for sequence, _ in scenes]
        baseline = score(plain, root / "gt", SETTINGS["IoU alone"], root / "pred" / "iou")
        print(f"{'IoU alone':<28} {'':<20}" + "".join(f" {m} {baseline[m]:.4f}"
                                                      for m in METRICS[:3])
              + f" IDSW {baseline['IDSW']}", flush=True)
        for number, (sigma, rho, seed) in enumerate(itertools.product(sigmas, rhos, seeds)):
            sequences = [with_embeddings(s, t, args.dim, sigma, rho, 1000 * seed + i)
                         for i, (s, t) in enumerate(scenes)]
            for label, options in SETTINGS.items():
                figures = baseline if label == "IoU alone" else score(
                    sequences, root / "gt", options, root / "pred" / f"{number}-{label}")
                runs.append({"sigma": sigma, "rho": rho, "seed": seed, "setting": label,
                             **figures})
                print(f"{label:<28} sigma {sigma} rho {rho} seed {seed}"
                      + "".join(f" {m} {figures[m]:.4f}" for m in METRICS[:3])
                      + f" IDSW {figures['IDSW']}", flush=True)
    means = {}
    print("\nmeans over rho and seeds:")
    for sigma in sigmas:
        for label in SETTINGS:
            rows = [r for r in runs if r["sigma"] == sigma and r["setting"] == label]
            mean = {m: float(np.mean([r[m] for r in rows])) for m in METRICS}
            means[f"{sigma}/{label}"] = mean
            print(f"sigma {sigma:<4} {label:<28}" + "".join(f" {m} {mean[m]:.4f}"
                                                           for m in METRICS[:3])
                  + f" IDSW {mean['IDSW']:.0f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"settings": SETTINGS, "scenes": args.scenes,
                                         "frames": args.frames, "dim": args.dim,
                                         "runs": runs, "means": means}, indent=1))


if __name__ == "__main__":
    main()
