"""The detector family written here (sizes n, s, m) and its registry."""

from engines.models.head import HeadOutput
from engines.models.yolo import SCALES, STRIDES, Detector, count_gflops, count_parameters

__all__ = ["SCALES", "STRIDES", "Detector", "HeadOutput", "count_gflops", "count_parameters"]
