"""The detector family written here (sizes n, s, m) and its registry."""

from detstream.engines.models.head import HeadOutput
from detstream.engines.models.yolo import SCALES, STRIDES, Detector, count_gflops, count_parameters

__all__ = ["SCALES", "STRIDES", "Detector", "HeadOutput", "count_gflops", "count_parameters"]
