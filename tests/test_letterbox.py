import cv2
import numpy as np
import pytest

from detstream.engines.process.letterbox import Letterbox, letterbox


@pytest.mark.parametrize("shape, align, pad", [((360, 640), "center", (0, 70)),
                                               ((200, 100), "center", (80, 0)),
                                               ((360, 640), "topleft", (0, 0))])
def test_letterbox_places_and_undoes(shape, align, pad):
    image = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    out, info = letterbox(image, (320, 320), align=align)
    assert out.shape == (320, 320, 3) and (info.pad_x, info.pad_y) == pad
    h, w = round(shape[0] * info.ratio), round(shape[1] * info.ratio)
    region = out[pad[1]:pad[1] + h, pad[0]:pad[0] + w]
    interp = cv2.INTER_AREA if info.ratio < 1 else cv2.INTER_LINEAR
    np.testing.assert_array_equal(region, cv2.resize(image, (w, h), interpolation=interp))
    padding = np.ones((320, 320), bool)
    padding[pad[1]:pad[1] + h, pad[0]:pad[0] + w] = False
    assert bool((out[padding] == 114).all())
    boxes = np.array([[10, 20, 60, 90]], np.float32)
    np.testing.assert_allclose(info.to_frame(info.to_input(boxes)), boxes, atol=1e-4)


def test_to_frame_clips_to_the_frame():
    info = Letterbox(ratio=1.0, pad_x=0.0, pad_y=0.0, frame_width=100, frame_height=50)
    np.testing.assert_array_equal(info.to_frame(np.array([[-10, -10, 200, 200]])),
                                  [[0, 0, 100, 50]])
