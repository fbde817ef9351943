"""MOTChallenge and YOLO writers round-trip through their readers; readers reject bad rows;
detections serialise to the exact JSON the JSON Lines sink and the page share."""

from __future__ import annotations

import numpy as np
import pytest

from detstream.engines.data.mot import MotWriter, SeqInfo, read_mot, read_seqinfo, write_seqinfo
from detstream.engines.data.synthetic import CLASS_NAMES, SceneConfig, SyntheticScene
from detstream.engines.data.synthetic.dataset import DatasetSpec, write_dataset
from detstream.engines.data.yolo import label_path, load_data_yaml, read_labels, write_labels
from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections
from tests.conftest import shared_path


def test_mot_ground_truth_round_trip(tmp_path):
    config = SceneConfig(width=480, height=270, frames=30, seed=5, objects=10)
    written = {}
    with MotWriter(tmp_path / "gt.txt", ground_truth=True) as writer:
        for frame, (_, truth) in enumerate(SyntheticScene(config), start=1):
            writer.write(frame, truth)
            if len(truth):
                written[frame] = truth
    read = read_mot(tmp_path / "gt.txt", CLASS_NAMES)
    assert set(read) == set(written)
    for frame, truth in written.items():
        back = read[frame]
        np.testing.assert_allclose(back.boxes, truth.boxes, atol=0.01)
        assert back.track_ids.tolist() == truth.track_ids.tolist()
        assert back.class_ids.tolist() == truth.class_ids.tolist()
        np.testing.assert_allclose(back.data["visibility"], truth.data["visibility"], atol=1e-4)
        assert back.scores.tolist() == [float(v > 0) for v in truth.data["visibility"]]


def test_mot_tracker_results_round_trip(tmp_path):
    dets = Detections(boxes=[[10.5, 20.25, 30, 60], [0, 0, 5, 5]], scores=[0.9, 0.3],
                      class_ids=[0, 1], track_ids=[3, -1])
    with MotWriter(tmp_path / "pred.txt") as writer:
        writer.write(7, dets)
    assert (tmp_path / "pred.txt").read_text() == "7,3,10.5,20.25,19.5,39.75,0.9000,-1,-1,-1\n"
    back = read_mot(tmp_path / "pred.txt")[7]
    np.testing.assert_allclose(back.boxes, [[10.5, 20.25, 30, 60]])
    assert back.class_ids.tolist() == [-1]


_BOXES = Detections(boxes=[[10.126, 20.5, 30, 60.004], [0, 0, 5.55, 5]], scores=[0.91237, 0.3],
                    class_ids=[0, 1], class_names=("person", "car"))
_UNTRACKED = [
    {"box": [10.13, 20.5, 30.0, 60.0], "score": 0.9124, "class_id": 0, "class": "person",
     "track_id": -1},
    {"box": [0.0, 0.0, 5.55, 5.0], "score": 0.3, "class_id": 1, "class": "car", "track_id": -1},
]


@pytest.mark.parametrize("dets, digits, expected", [
    (None, {}, []),
    (Detections.empty(("person",)), {}, []),
    (_BOXES, {}, _UNTRACKED),
    (_BOXES.replace(track_ids=[3, 7], data={"coasted": np.array([False, True])}), {}, [
        {**_UNTRACKED[0], "track_id": 3}, {**_UNTRACKED[1], "track_id": 7, "coasted": True}]),
    (_BOXES, {"box_digits": 1, "score_digits": 3}, [  # the page's precision
        {**_UNTRACKED[0], "box": [10.1, 20.5, 30.0, 60.0], "score": 0.912},
        {**_UNTRACKED[1], "box": [0.0, 0.0, 5.6, 5.0]}]),
    (Detections(boxes=[[1, 2, 3, 4]], scores=[0.5], class_ids=[4]), {}, [  # no class names
        {"box": [1.0, 2.0, 3.0, 4.0], "score": 0.5, "class_id": 4, "class": "4",
         "track_id": -1}]),
])
def test_detections_to_json(dets, digits, expected):
    """The exact dicts (key order included) the JSON Lines sink and the page are built from."""
    from detstream.stream.serialize import detections_to_json

    items = detections_to_json(dets, **digits)
    assert items == expected
    assert [list(item) for item in items] == [list(item) for item in expected]


def test_jsonl_line_is_unchanged(tmp_path):
    """One JSON Lines record, byte for byte, with a tracked, a coasted and an event."""
    from detstream.stream.pipeline.packet import FramePacket
    from detstream.stream.sinks.files import JsonlSink
    from detstream.stream.track.base import TrackEvent

    dets = _BOXES.replace(track_ids=[3, 7], data={"coasted": np.array([False, True])})
    sink = JsonlSink(tmp_path / "out.jsonl")
    sink.write(FramePacket(2, 5, 0.2, 0.0, np.zeros((1, 1, 3), np.uint8), detections=dets,
                           events=[TrackEvent("started", 3, 0), TrackEvent("lost", 9, 5)]))
    sink.write(FramePacket(2, 6, None, 0.0, np.zeros((1, 1, 3), np.uint8)))
    sink.close()
    assert (tmp_path / "out.jsonl").read_text() == (
        '{"frame":5,"time":0.2,"stream":2,"detections":['
        '{"box":[10.13,20.5,30.0,60.0],"score":0.9124,"class_id":0,"class":"person",'
        '"track_id":3},{"box":[0.0,0.0,5.55,5.0],"score":0.3,"class_id":1,"class":"car",'
        '"track_id":7,"coasted":true}],"events":['
        '{"event":"started","track_id":3,"class_id":0,"class":"person"},'
        '{"event":"lost","track_id":9,"class_id":5,"class":"5"}]}\n'
        '{"frame":6,"time":null,"stream":2,"detections":[],"events":[]}\n')


@pytest.mark.parametrize(
    "content, message",
    [
        ("1,1,10,10,5,5,1\n1,2,10,x,5,5,1\n", r"gt\.txt:2: a MOT row must hold numbers"),
        ("1,1,10,10\n", r"gt\.txt:1: a MOT row needs at least 6"),
        ("0,1,10,10,5,5,1\n", r"gt\.txt:1: frame numbers are whole numbers from 1"),
        ("\n\n2,1,10,10,-5,5,1\n", r"gt\.txt:3: box width and height must not be negative"),
    ],
)
def test_mot_reader_names_the_bad_line(tmp_path, content, message):
    (tmp_path / "gt.txt").write_text(content)
    with pytest.raises(UserInputError, match=message):
        read_mot(tmp_path / "gt.txt")


def test_seqinfo_round_trip(tmp_path):
    info = SeqInfo(name="scene", frame_rate=29.97, length=123, width=640, height=360,
                   im_dir="video.mp4", im_ext=".mp4")
    write_seqinfo(tmp_path / "seqinfo.ini", info, extra={"seed": "4"})
    assert read_seqinfo(tmp_path / "seqinfo.ini") == info
    assert "frameRate=29.97" in (tmp_path / "seqinfo.ini").read_text()


def test_yolo_labels_round_trip(tmp_path):
    boxes = np.array([[10, 20, 50, 60], [0, 0, 320, 180], [100.5, 30, 101.5, 31]], np.float32)
    write_labels(tmp_path / "a.txt", np.array([0, 3, 2]), boxes, 320, 180)
    classes, cxcywh = read_labels(tmp_path / "a.txt", num_classes=4)
    assert classes.tolist() == [0, 3, 2]
    xyxy = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2],
                          axis=1) * [320, 180, 320, 180]
    np.testing.assert_allclose(xyxy, boxes, atol=1e-3)


def test_yolo_reader_errors_and_background(tmp_path):
    classes, boxes = read_labels(tmp_path / "missing.txt")
    assert classes.shape == (0,) and boxes.shape == (0, 4)
    (tmp_path / "bad.txt").write_text("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(UserInputError, match=r"bad\.txt:2: bad class id 7"):
        read_labels(tmp_path / "bad.txt", num_classes=4)
    (tmp_path / "short.txt").write_text("0 0.5 0.5\n")
    with pytest.raises(UserInputError, match=r"short\.txt:1: expected 5 values"):
        read_labels(tmp_path / "short.txt")


def test_synthetic_dataset_round_trip(tmp_path):
    spec = DatasetSpec(train=14, val=6, imgsz=256, seed=3, images_per_scene=4)
    counts = write_dataset(tmp_path / "ds", spec, workers=1)
    data = load_data_yaml(tmp_path / "ds" / "data.yaml")
    assert data.names == CLASS_NAMES
    train, val = data.images("train"), data.images("val")
    assert len(train) == 14 and len(val) == 6
    total = 0
    for image in train:
        classes, boxes = read_labels(label_path(image), num_classes=len(data.names))
        assert np.all((boxes >= 0) & (boxes <= 1))
        total += len(classes)
    assert total == counts["train_boxes"] > 0
    # The same seed writes the same labels; the worker count does not matter.
    again = write_dataset(tmp_path / "ds2", spec, workers=2)
    assert again == counts
    for image in train:
        twin = tmp_path / "ds2" / image.relative_to(tmp_path / "ds")
        assert label_path(image).read_text() == label_path(twin).read_text()


def test_validation_scenes_never_reuse_training_seeds():
    from detstream.engines.data.synthetic.dataset import scene_config

    spec = DatasetSpec(train=3000, val=300, seed=0)
    train = {scene_config("train", i, spec).seed for i in range(500)}
    val = {scene_config("val", i, spec).seed for i in range(50)}
    assert len(train) == 500 and not train & val


def test_data_yaml_errors(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        load_data_yaml(tmp_path / "nope.yaml")
    (tmp_path / "d.yaml").write_text("train: images/train\n")
    with pytest.raises(UserInputError, match="no class names"):
        load_data_yaml(tmp_path / "d.yaml")
    (tmp_path / "d.yaml").write_text("train: images/train\nnames: [a]\n")
    with pytest.raises(UserInputError, match="split path .* does not exist"):
        load_data_yaml(tmp_path / "d.yaml").images("train")


def test_yolo_reader_on_coco128():
    data = load_data_yaml(shared_path("coco128/data.yaml"))
    assert len(data.names) == 80 and data.names[0] == "person"
    images = data.images("train")
    assert len(images) == 128
    labelled = [read_labels(label_path(p), num_classes=80) for p in images]
    background = [p for p, (c, _) in zip(images, labelled, strict=True) if len(c) == 0]
    assert len(background) == 2  # two images have no label file
    assert sum(len(c) for c, _ in labelled) == 929
    assert len({int(k) for c, _ in labelled for k in c}) == 71


@pytest.mark.parametrize("width, height", [(128, 64), (127, 63)])
def test_written_video_keeps_colours(tmp_path, width, height):
    """Frames go to the encoder as I420 from OpenCV: colours come back (BT.601, limited range,
    the matrix players assume for untagged video), odd sizes included."""
    import av

    from detstream.engines.data.video import VideoWriter

    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (128, 128, 128), (30, 200, 90),
               (255, 255, 255), (0, 0, 0), (50, 60, 70)]
    image = np.zeros((height, width, 3), np.uint8)
    for i, colour in enumerate(colours):
        image[:, i * 16:(i + 1) * 16] = colour
    with VideoWriter(tmp_path / "c.mp4", width, height, 30, crf=0) as writer:
        for _ in range(3):
            writer.write(image)
    with av.open(str(tmp_path / "c.mp4")) as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="bgr24")
    assert decoded.shape[:2] == (height + height % 2, width + width % 2)
    for i, colour in enumerate(colours):
        assert np.abs(decoded[height // 2, i * 16 + 8].astype(int) - colour).max() <= 3


@pytest.mark.parametrize("colorspace, color_range, exact", [
    (2, 0, False), (6, 1, False), (1, 1, True), (2, 2, True)])
def test_decoded_frames_convert_to_bgr_as_ffmpeg_does(colorspace, color_range, exact):
    """OpenCV converts BT.601 and untagged limited-range frames (close to FFmpeg); BT.709 and
    full-range frames go through FFmpeg itself, which reads the tags."""
    import av

    from detstream.engines.data.video import frame_to_bgr

    rng = np.random.default_rng(0)
    y = rng.integers(16, 236, (64, 96), dtype=np.uint8)
    uv = np.repeat(np.repeat(rng.integers(16, 241, (2, 16, 24), dtype=np.uint8), 2, 1), 2, 2)
    planes = np.concatenate([y.ravel(), uv[0].ravel(), uv[1].ravel()]).reshape(96, 96)
    planar = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    planar.colorspace, planar.color_range = colorspace, color_range
    reference = planar.to_ndarray(format="bgr24").astype(int)
    for frame in (planar, planar.reformat(format="nv12")):  # NVDEC's frames are NV12
        frame.colorspace, frame.color_range = colorspace, color_range
        converted = frame_to_bgr(frame).astype(int)
        assert converted.shape == (64, 96, 3)
        if exact:  # FFmpeg's own conversion of this frame
            assert np.array_equal(converted, frame.to_ndarray(format="bgr24"))
        else:  # (FFmpeg's NV12 path itself is 9 levels off its planar one on this picture)
            assert np.abs(converted - reference).mean() < 1.5
            assert np.abs(converted - reference).max() <= 4
