"""Pre- and post-processing shared by every backend and caller: letterbox, decode, NMS."""
