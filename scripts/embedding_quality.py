"""How well a model's appearance embeddings re-identify objects on held-out synthetic scenes.

For each scene, detections are matched to the truth (IoU >= 0.5); then, for each matched
detection at frame t, its most similar detection at frame t + gap (cosine of the embeddings)
should be the same object. Prints that top-1 accuracy per gap, and the mean cosine of the same
object against the most similar other object.

    python scripts/embedding_quality.py --model runs/embed/train/weights/best.safetensors
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.optimize import linear_sum_assignment

from detstream.engines.boxes import iou_matrix
from detstream.engines.data.synthetic import SceneConfig
from detstream.engines.data.synthetic.scene import SyntheticScene
from detstream.engines.predict import Predictor
from detstream.engines.runtime.select import open_backend


def sightings(model: str, scenes: int, frames: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per scene, per frame: (truth ids, embeddings) of the detections matched to the truth."""
    predictor = Predictor(open_backend(model, "onnxruntime", "cpu"), conf=0.3)
    out = []
    for seed in range(scenes):
        config = SceneConfig(width=640, height=360, fps=25.0, frames=frames, seed=50_000 + seed,
                             objects=10, camera_motion=seed % 2 == 1)
        per_frame = []
        for image, truth in SyntheticScene(config):
            dets = predictor([image])[0]
            iou = iou_matrix(truth.boxes, dets.boxes)
            rows, cols = linear_sum_assignment(-iou) if iou.size else ([], [])
            keep = [(r, c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= 0.5]
            ids = np.array([truth.track_ids[r] for r, _ in keep], np.int64)
            vectors = np.array([dets.data["embedding"][c] for _, c in keep], np.float32)
            per_frame.append((ids, vectors.reshape(len(keep), -1)))
        out.append(per_frame)
    return out


def score(scenes: list[list[tuple[np.ndarray, np.ndarray]]], gap: int) -> dict[str, float]:
    correct = total = 0
    same, other = [], []
    for per_frame in scenes:
        for t in range(len(per_frame) - gap):
            ids_a, vec_a = per_frame[t]
            ids_b, vec_b = per_frame[t + gap]
            if len(ids_b) < 2:
                continue
            sim = vec_a @ vec_b.T
            for i, ident in enumerate(ids_a):
                match = np.flatnonzero(ids_b == ident)
                if not len(match):
                    continue
                total += 1
                correct += int(ids_b[int(sim[i].argmax())] == ident)
                same.append(float(sim[i, match[0]]))
                other.append(float(np.delete(sim[i], match).max()))
    return {"gap": gap, "pairs": total, "top1": round(correct / max(total, 1), 4),
            "cos_same": round(float(np.mean(same)), 4),
            "cos_best_other": round(float(np.mean(other)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--frames", type=int, default=80)
    args = parser.parse_args()
    data = sightings(args.model, args.scenes, args.frames)
    print(json.dumps([score(data, gap) for gap in (1, 10, 25, 50)], indent=1))


if __name__ == "__main__":
    main()
