"""Data: the synthetic world, YOLO and MOTChallenge readers/writers, and video writing."""
