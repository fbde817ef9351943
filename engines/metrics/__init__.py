"""Scores: detection metrics (COCO mAP, P/R/F1 through faster-coco-eval, :mod:`.coco`) and
multi-object tracking metrics (HOTA, CLEAR, Identity through TrackEval, :mod:`.mot`).

Both live on the engines side because training validates with the COCO evaluator and engines
never imports stream; the live side (``detstream eval-mot``, the truth scorer, ``bench mot``)
imports them from here.
"""
