"""The detection thresholds every caller starts from (no heavy imports: the command line's
option declarations read them)."""

#: Keep detections whose score is above this.
DEFAULT_CONF = 0.25
#: Non-maximum suppression merges boxes of one class that overlap more than this.
DEFAULT_IOU = 0.45
