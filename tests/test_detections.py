import numpy as np
import pytest

from detstream.engines.spec import Detections


def make(n: int = 3) -> Detections:
    boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 25], [30, 30, 40, 35]], np.float32)[:n]
    return Detections(boxes=boxes, scores=np.linspace(0.9, 0.5, n), class_ids=np.arange(n),
                      class_names=("a", "b", "c"), data={"visibility": np.ones(n)})


def test_defaults_and_dtypes():
    d = make()
    assert d.boxes.dtype == np.float32 and d.scores.dtype == np.float32
    assert d.class_ids.dtype == np.int32 and d.track_ids.tolist() == [-1, -1, -1]
    assert d.labels == ["a", "b", "c"]
    np.testing.assert_array_equal(d.xywh[1], [5, 5, 15, 20])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"boxes": np.zeros((2, 3))}, r"expected shape \[N, 4\], got \[2, 3\]"),
        ({"scores": np.zeros(2)}, "expected 3 rows like boxes, got 2"),
        ({"data": {"visibility": np.zeros(4)}}, r"data\['visibility'\]: expected 3 rows"),
    ],
)
def test_validation_names_the_problem(kwargs, message):
    base = {"boxes": make().boxes, "scores": make().scores, "class_ids": make().class_ids}
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Detections(**base)


def test_indexing_keeps_rows_together():
    d = make()
    picked = d[d.scores > 0.6]
    assert len(picked) == 2
    assert picked.class_ids.tolist() == [0, 1]
    assert picked.data["visibility"].shape == (2,)
    assert len(d[1]) == 1 and d[1].class_ids.tolist() == [1]


def test_replace_returns_new_record():
    d = make()
    tracked = d.replace(track_ids=np.array([7, 8, 9]))
    assert tracked.track_ids.tolist() == [7, 8, 9]
    assert d.track_ids.tolist() == [-1, -1, -1]


def test_merge_handles_empty():
    empty = Detections.empty(("a", "b", "c")).replace(data={"visibility": np.zeros(0)})
    merged = Detections.merge([empty, make(), empty, make(2)])
    assert len(merged) == 5 and merged.class_names == ("a", "b", "c")
    assert len(Detections.merge([])) == 0
