"""``detstream eval-mot``: tracking scores through TrackEval."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from detstream.stream.commands.args import output_file

EXAMPLES = """examples:
  detstream eval-mot --gt TUD-Campus/gt.txt --pred tracks.txt
  detstream eval-mot --gt runs/synth/seqs --pred runs/track/results --json scores.json
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval-mot", help="HOTA, MOTA, IDF1 ... of tracks against ground truth (TrackEval)",
        description="Score MOTChallenge tracks with TrackEval (HOTA, DetA, AssA, MOTA, IDF1, "
                    "IDSW, FP, FN, MT, ML), without preprocessing. GT and PRED are single MOT "
                    "files, or folders: GT/SEQ/gt/gt.txt with PRED/SEQ.txt.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", type=Path, required=True, help="gt.txt or a folder of sequences")
    parser.add_argument("--pred", type=Path, required=True, help="result file or folder")
    parser.add_argument("--json", type=output_file, default=None,
                        help="also write the scores here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from detstream.engines.metrics.mot import evaluate_mot

    combined, sequences = evaluate_mot(args.gt, args.pred)
    if len(sequences) > 1:
        width = max(len(name) for name in sequences)
        for name, scores in sequences.items():
            print(f"{name:<{width}}  {scores.line()}")
    print(f"{'combined' if len(sequences) > 1 else next(iter(sequences))}: {combined.line()}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {**combined.to_dict(),
                   "sequences": {name: s.to_dict() for name, s in sequences.items()}}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0
