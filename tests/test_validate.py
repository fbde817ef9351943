"""Validation runs the model the way ``detstream run`` does: through the Predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detstream.engines.data.detection import DetectionSource
from detstream.engines.data.synthetic.dataset import DatasetSpec, write_dataset
from detstream.engines.metrics.coco import DetectionEvaluator
from detstream.engines.models import Detector
from detstream.engines.predict import Predictor
from detstream.engines.runtime.select import open_backend
from detstream.engines.spec import Detections, ModelSpec
from detstream.engines.train.validate import ModuleBackend, evaluate
from detstream.engines.zoo import DEFAULT_WEIGHTS

needs_default = pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(),
                                   reason=f"{DEFAULT_WEIGHTS} is not built (make default-model)")
METRICS = ("precision", "recall", "f1", "map50", "map50_95")


@pytest.fixture(scope="module")
def val_split(tmp_path_factory) -> DetectionSource:
    root = tmp_path_factory.mktemp("val")
    write_dataset(root, DatasetSpec(train=2, val=7, imgsz=256, seed=3), workers=1)
    return DetectionSource.from_yolo(root / "data.yaml", "val")


@needs_default
def test_validation_scores_exactly_what_the_predictor_finds(val_split):
    backend = open_backend("default", "torch", "cpu", half=False)
    predictor = Predictor(backend, conf=0.001, iou=0.65, max_det=300)
    names = val_split.class_names
    by_hand = DetectionEvaluator(names)
    ignored = 0
    for start in range(0, len(val_split), 4):  # the batches evaluate(batch=4) makes
        samples = [val_split.sample(i) for i in range(start, min(start + 4, len(val_split)))]
        found = predictor([image for image, _, _ in samples])
        for k, ((_, boxes, classes), pred) in enumerate(zip(samples, found, strict=True)):
            gt = Detections(boxes=boxes, scores=np.ones(len(boxes)), class_ids=classes,
                            class_names=names)
            hidden, hidden_classes = val_split.ignored(start + k)
            ignored += len(hidden)
            ignore = Detections(boxes=hidden, scores=np.ones(len(hidden)),
                                class_ids=hidden_classes, class_names=names)
            by_hand.add(gt, pred.replace(class_names=names), image_id=start + k,
                        ignore=ignore)
    expected = by_hand.compute()
    assert expected.map50 > 0.3  # the default model finds the synthetic shapes
    assert ignored > 0  # objects too hidden to be labelled are regions to ignore
    result = evaluate(backend, val_split, batch=4)
    assert result.to_json() == expected.to_json()
    # Worker processes hand the decoded frames over in shared memory; other batch sizes give
    # the same detections up to float rounding in batched convolutions.
    loaded = evaluate(backend, val_split, batch=3, workers=1)
    assert loaded.images == len(val_split)
    for key in METRICS:
        assert getattr(loaded, key) == pytest.approx(getattr(expected, key), abs=1e-4), key


def test_module_backend_runs_the_training_model_in_place():
    model = Detector("n", 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = ModelSpec(name="t", class_names=("a", "b", "c", "d"), input_size=(64, 64))
    backend = ModuleBackend(model, spec, "cpu")
    batch = torch.rand(2, 3, 64, 64)
    raw = backend.infer(batch)
    assert backend.model is model and backend.dtype == torch.float32 and not raw.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(raw, model(batch), atol=0, rtol=0)
    after = model.state_dict()  # eval mode: batch-norm statistics untouched
    assert all(torch.equal(before[k], after[k]) for k in before)
    found = Predictor(backend, conf=0.0)([np.zeros((48, 80, 3), np.uint8)])[0]
    assert found.class_names == spec.class_names
