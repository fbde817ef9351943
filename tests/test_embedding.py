"""The appearance-embedding head: identities in the data, the identity loss, training with the
detector frozen, export parity, and the embedding reaching ``Detections.data``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from detstream.engines.boxes import iou_matrix
from detstream.engines.data.detection import DetectionSource
from detstream.engines.data.loader import AugmentConfig, TrainDataset, build_loader
from detstream.engines.data.synthetic.dataset import DatasetSpec, write_dataset
from detstream.engines.errors import UserInputError
from detstream.engines.export.parity import sample_frames
from detstream.engines.models import Detector
from detstream.engines.models.checkpoint import load_tensors
from detstream.engines.models.embed import EmbedHead
from detstream.engines.predict import Predictor
from detstream.engines.runtime.select import open_backend
from detstream.engines.train.identity import IdentityLoss
from detstream.engines.train.loss import DetectionLoss
from detstream.engines.zoo import load_model
from tests.conftest import run_cli, run_main
from tests.helpers.tiny import CLASSES, tiny_checkpoint


@pytest.fixture(scope="module")
def identity_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ids")
    write_dataset(root, DatasetSpec(train=24, val=6, imgsz=128, seed=1), workers=1)
    return root / "data.yaml"


def test_the_raw_output_ends_in_unit_embeddings():
    model = Detector("n", 3, embed_dim=16).eval()
    with torch.no_grad():
        raw = model(torch.rand(2, 3, 64, 64))
        plain = Detector("n", 3).eval()
        plain.load_state_dict(model.state_dict(), strict=False)
        detection = plain(torch.rand(2, 3, 64, 64))
    anchors = 8 * 8 + 4 * 4 + 2 * 2
    assert raw.shape == (2, 4 + 3 + 16, anchors) and detection.shape == (2, 4 + 3, anchors)
    norms = raw[:, 7:].norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_the_embedding_head_reads_the_images_colours():
    # A detector's features ignore colour (it does not tell classes apart); the head also
    # reads the image, so the same features with an object recoloured give another vector.
    torch.manual_seed(0)
    head = EmbedHead((16, 32, 64), (8, 16, 32), dim=8).eval()
    features = [torch.zeros(1, c, 64 // s, 64 // s) for c, s in ((16, 8), (32, 16), (64, 32))]
    image = torch.full((1, 3, 64, 64), 0.5)
    recoloured = image.clone()
    image[:, 0, 32:56, 32:56] = 1.0  # a red object ...
    recoloured[:, 2, 32:56, 32:56] = 1.0  # ... and a blue one
    with torch.no_grad():
        same, other = head(features, image), head(features, recoloured)
    cell = 5 * 8 + 5  # the stride-8 anchor at the patch's centre
    assert torch.equal(same[:, 0], other[:, 0])  # a corner anchor does not see the patch
    assert (same[0, cell] - other[0, cell]).abs().max() > 1e-3


def test_identities_are_written_per_box_and_follow_them_through_augmentation(identity_data):
    source = DetectionSource.from_yolo(identity_data, "train")
    # An object keeps its identity (and so its class) across the images of its scene.
    class_of: dict[int, int] = {}
    for i in range(len(source)):
        _, classes = source.annotations(i)
        ids = source.identities(i)
        assert ids is not None and len(ids) == len(classes)
        for ident, cls in zip(ids.tolist(), classes.tolist(), strict=True):
            assert class_of.setdefault(ident, cls) == cls
    repeated = sum(1 for i in range(len(source)) for ident in source.identities(i).tolist()
                   if sum(ident in source.identities(j) for j in range(len(source))) > 1)
    assert repeated > 10  # objects are seen in several images: identities can be learned
    dataset = TrainDataset(source, 128, AugmentConfig(mosaic=1.0, degrees=10), seed=0,
                           identities=True)
    values = sorted(class_of)
    assert dataset.num_identities == len(values)
    rows = repeats = 0
    for epoch in range(2):
        dataset.set_epoch(epoch)
        for _, targets, _ in build_loader(dataset, 8, 0, shuffle=True):
            assert targets.shape[1] == 7
            for row in targets.tolist():  # mosaic, affine and flips kept each pair together
                assert class_of[values[int(row[6])]] == int(row[1])
                rows += 1
            for image in targets[:, 0].unique():  # mosaics of one scene's frames
                ids = targets[targets[:, 0] == image, 6]
                repeats += len(ids) - len(ids.unique())
    assert rows > 50 and repeats > 10


def test_identity_files_that_do_not_match_the_labels_are_one_clear_error(tmp_path):
    write_dataset(tmp_path, DatasetSpec(train=6, val=6, imgsz=96, seed=2), workers=1)
    source = DetectionSource.from_yolo(tmp_path / "data.yaml", "train")
    index = next(i for i in range(len(source)) if len(source.annotations(i)[1]))
    path = tmp_path / "identities" / "train" / (source.image_path(index).stem + ".txt")
    path.write_text("7\n" * (len(source.annotations(index)[1]) + 1))
    with pytest.raises(UserInputError, match="identities for .* labelled boxes"):
        source.identities(index)
    path.write_text("seven\n")
    with pytest.raises(UserInputError, match="whole-number identity"):
        source.identities(index)


def test_the_identity_loss_falls_when_fitting_one_batch(identity_data):
    torch.manual_seed(0)
    source = DetectionSource.from_yolo(identity_data, "train")
    dataset = TrainDataset(source, 128, AugmentConfig(mosaic=0.0), identities=True)
    images, targets, _ = next(iter(build_loader(dataset, 12, 0, shuffle=False)))
    model = Detector("n", len(CLASSES), embed_dim=16).train()
    identity = IdentityLoss(16, dataset.num_identities)
    loss_fn = DetectionLoss(len(CLASSES), identity=identity)
    params = list(model.embed.parameters()) + list(identity.parameters())
    optimizer = torch.optim.Adam(params, lr=0.01)
    x = images.float() / 255
    losses = []
    for _ in range(30):
        total, parts = loss_fn(model(x), targets)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(float(parts[3]))
    assert losses[0] > 0 and losses[-1] < 0.5 * losses[0]


def test_freezing_the_detector_trains_only_the_embedding(identity_data, tmp_path):
    start = tiny_checkpoint(tmp_path / "start.safetensors", 128)
    out = tmp_path / "run"
    result = run_main("train", "--data", str(identity_data), "--imgsz", "128", "--epochs", "2",
                     "--batch", "8", "--workers", "0", "--out", str(out), "--weights",
                     str(start), "--embed-dim", "8", "--freeze", "detector",
                     "--warmup-epochs", "0")
    assert result.returncode == 0, result.stderr[-2000:]
    before = load_tensors(start)
    after = load_tensors(out / "weights" / "last.safetensors")  # FP32, the EMA weights
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    embed = [key for key in after if key.startswith("model.embed.")]
    assert embed and all(key not in before for key in embed)
    row = next(csv.DictReader((out / "results.csv").open()))
    assert float(row["train/id"]) > 0
    # The detector's accuracy cannot change, so the latest embedding is the one shipped.
    assert json.loads((out / "weights" / "best.json").read_text())["epoch"] == 2
    # The trained model puts a unit embedding on every detection.
    predictor = Predictor(open_backend(str(out / "weights" / "best.safetensors"), "torch",
                                       "cpu"), conf=0.0, max_det=20)
    found = predictor(sample_frames(2, 256, 144))
    assert sum(len(d) for d in found)
    for dets in found:
        vectors = dets.data["embedding"]
        assert vectors.shape == (len(dets), 8) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("args, message", [
    (["--embed-dim", "8", "--freeze", "detector"], "--freeze detector trains only"),
    (["--freeze", "detector"], "--freeze detector trains only"),
])
def test_freezing_without_a_detector_to_keep_is_refused(identity_data, tmp_path, args, message):
    result = run_cli("train", "--data", str(identity_data), "--out", str(tmp_path / "r"), *args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_training_embeddings_needs_identity_files(tmp_path):
    write_dataset(tmp_path, DatasetSpec(train=6, val=6, imgsz=96, seed=3), workers=1)
    for path in (tmp_path / "identities" / "train").iterdir():
        path.unlink()
    result = run_cli("train", "--data", str(tmp_path / "data.yaml"), "--imgsz", "96",
                     "--epochs", "1", "--workers", "0", "--out", str(tmp_path / "r"),
                     "--embed-dim", "8")
    assert result.returncode == 2 and "no identity files" in result.stderr


@pytest.mark.parametrize("half", [False, True])
def test_the_default_models_embedding_survives_export(tmp_path, half):
    _, spec, _ = load_model("default")
    assert spec.embed_dim == 32  # the embedded default ships with its embedding head
    out = tmp_path / "default.onnx"
    result = run_main("export", "--model", "default", "--imgsz", "256", "--out", str(out),
                     *(["--half"] if half else []))
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.splitlines()[0]
    assert line.endswith("ok") and (not half or "min embedding cosine" in line)
    frames = sample_frames(3, 320, 180)
    reference = Predictor(open_backend("default", "torch", "cpu", imgsz=256))
    exported = Predictor(open_backend(str(out), "onnxruntime", "cpu"))
    assert exported.spec.embed_dim == 32
    compared = 0
    for a, b in zip(reference(frames), exported(frames), strict=True):
        assert b.data["embedding"].shape == (len(b), 32)
        iou = iou_matrix(a.boxes, b.boxes)
        for i, j in enumerate(iou.argmax(axis=1) if iou.size else []):
            if iou[i, j] > 0.9:  # the same box: the same looks
                cosine = float(a.data["embedding"][i] @ b.data["embedding"][j])
                assert cosine > (0.95 if half else 0.9999)
                compared += 1
    assert compared >= 5


def test_models_without_an_embedding_head_give_no_embeddings(tmp_path):
    path = tiny_checkpoint(tmp_path / "plain.safetensors", 128)
    found = Predictor(open_backend(str(path), "torch", "cpu"), conf=0.0,
                      max_det=20)(sample_frames(1))
    assert len(found[0]) and "embedding" not in found[0].data


def test_the_contrastive_term_rewards_telling_objects_apart():
    torch.manual_seed(0)
    loss = IdentityLoss(8, 5)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    apart = torch.nn.functional.normalize(torch.eye(8)[labels] + 0.01 * torch.randn(6, 8), dim=1)
    mixed = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    assert float(loss.contrast(apart, labels)) < 0.01 < 1.0 < float(loss.contrast(mixed, labels))
    assert float(loss.contrast(apart, torch.arange(6))) == 0.0  # no second sighting: no term
