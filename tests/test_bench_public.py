"""``bench mot --public`` and ``bench tune --public-root``: real MOTChallenge sequences scored
with TrackEval, per sequence and combined, and tracker settings chosen on them."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from detstream.engines.data.mot import write_mot
from detstream.engines.metrics.mot import MotScores, combine_mot, evaluate_mot_detailed
from detstream.stream.cli import main
from tests.conftest import shared_path

#: Two small sequences (71 and 354 frames).
SMALL = ("TUD-Campus", "ETH-Sunnyday")


def copy_sequences(names: tuple[str, ...], root: Path) -> Path:
    """``root`` holding copies of the named MOT15 sequences (det, gt, seqinfo.ini)."""
    for name in names:
        source = shared_path(f"mot15/{name}")
        (root / name).mkdir(parents=True)
        for file in ("det.txt", "gt.txt", "seqinfo.ini"):
            shutil.copyfile(source / file, root / name / file)
    return root


def considered_truth(gt: Path) -> int:
    """Truth boxes TrackEval counts for MOT15 without preprocessing: rows not marked 0."""
    rows = np.loadtxt(gt, delimiter=",", ndmin=2)
    return int((rows[:, 6] != 0).sum())


def trackeval_direct(gt_root: Path, name: str, result: Path) -> dict:
    """TrackEval called directly (MOT15, no preprocessing) on one sequence's result."""
    import trackeval

    trackers = result.parent.parent / "trackers"
    (trackers / "direct" / "data").mkdir(parents=True)
    shutil.copyfile(result, trackers / "direct" / "data" / f"{name}.txt")
    evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False,
                                     "PRINT_CONFIG": False, "OUTPUT_SUMMARY": False,
                                     "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                                     "TIME_PROGRESS": False})
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(trackers), "BENCHMARK": "MOT15",
        "TRACKERS_TO_EVAL": ["direct"], "SKIP_SPLIT_FOL": True, "DO_PREPROC": False,
        "PRINT_CONFIG": False, "SEQ_INFO": {name: None}})  # None: its seqinfo.ini's length
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"PRINT_CONFIG": False})]
    results, _ = evaluator.evaluate([dataset], metrics)
    return results["MotChallenge2DBox"]["direct"][name]["pedestrian"]


def test_a_known_tracker_output_scores_what_trackeval_and_the_benchmark_say(tmp_path):
    from detstream.stream.bench.public import load_sequences, score_folder

    folder = shared_path("mot15/TUD-Campus")
    (sequence,) = load_sequences(folder, tmp_path / "gt")  # the job's truth folder
    assert (sequence.scene, sequence.fps, sequence.size) == ("TUD-Campus", 25.0, (640, 480))
    (tmp_path / "pred").mkdir()
    shutil.copyfile(folder / "tracker_result.txt", tmp_path / "pred" / "TUD-Campus.txt")
    report = score_folder(tmp_path / "gt", tmp_path / "pred")
    ours = MotScores(**report["per_sequence"]["TUD-Campus"])
    assert MotScores(**report["combined"]) == ours  # one sequence: combined is itself

    direct = trackeval_direct(tmp_path / "gt", "TUD-Campus", tmp_path / "pred" / "TUD-Campus.txt")
    hota, clear, ident = direct["HOTA"], direct["CLEAR"], direct["Identity"]
    assert ours.HOTA == float(np.mean(hota["HOTA"]))
    assert ours.DetA == float(np.mean(hota["DetA"]))
    assert ours.AssA == float(np.mean(hota["AssA"]))
    assert ours.MOTA == clear["MOTA"] and ours.IDF1 == ident["IDF1"]
    assert (ours.IDSW, ours.FP, ours.FN, ours.Frag, ours.MT, ours.ML) == (
        clear["IDSW"], clear["CLR_FP"], clear["CLR_FN"], clear["Frag"], clear["MT"], clear["ML"])
    assert ours.frames == 71
    # The published figures of this output.
    assert (round(ours.MOTA, 4), round(ours.IDF1, 4), round(ours.HOTA, 4)) == (
        0.5265, 0.5577, 0.3914)
    assert (ours.FP, ours.FN, ours.IDSW) == (13, 150, 7)


@pytest.fixture(scope="module")
def small_report(tmp_path_factory) -> tuple[Path, dict, str]:
    """``bench mot --public`` run through the CLI on TUD-Campus and ETH-Sunnyday."""
    root = copy_sequences(SMALL, tmp_path_factory.mktemp("seqs"))
    out = root.parent / "public.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["bench", "mot", "--public", str(root), "--json", str(out)])
    assert code == 0
    return root, json.loads(out.read_text()), printed.getvalue()


def test_the_combined_row_is_trackeval_s_combined_not_the_mean(small_report):
    root, report, _ = small_report
    online = report["outputs"]["online"]
    per = {name: MotScores(**online["per_sequence"][name]) for name in SMALL}
    combined = MotScores(**online["combined"])
    truth = {name: considered_truth(root / name / "gt.txt") for name in SMALL}
    for name, s in per.items():  # the counts are what MOTA is made of, sequence by sequence
        assert s.MOTA == pytest.approx(1 - (s.FN + s.FP + s.IDSW) / truth[name], abs=1e-12)
    errors = sum(s.FN + s.FP + s.IDSW for s in per.values())
    assert combined.MOTA == pytest.approx(1 - errors / sum(truth.values()), abs=1e-12)
    mean = float(np.mean([s.MOTA for s in per.values()]))
    assert abs(combined.MOTA - mean) > 0.01, (combined.MOTA, mean)
    assert combined.IDSW == sum(s.IDSW for s in per.values())
    assert combined.frames == 71 + 354


def test_combining_a_subset_equals_scoring_it_alone(small_report, tmp_path):
    from detstream.stream.bench.public import load_sequences, track_public

    # What bench tune's leave-one-sequence-out relies on: TrackEval's combination of some
    # sequences' results is what scoring those sequences together gives.
    root, _, _ = small_report
    sequences = load_sequences(root, tmp_path / "gt")
    for sequence in sequences:
        online = track_public(sequence, "botsort", {})["online"]
        write_mot(tmp_path / "pred" / f"{sequence.scene}.txt", online.items())
    both = evaluate_mot_detailed(tmp_path / "gt", tmp_path / "pred")
    assert combine_mot(both.raw, both.combined.frames) == both.combined
    alone = combine_mot({"TUD-Campus": both.raw["TUD-Campus"]}, 71)
    assert alone == both.sequences["TUD-Campus"]
    assert alone != both.combined


def test_bench_mot_public_prints_every_sequence_and_matches_the_track_command(small_report,
                                                                               tmp_path):
    root, report, printed = small_report
    lines = printed.splitlines()
    for output in ("online", "gap-filled"):
        assert any(line.startswith(output) for line in lines)
        assert set(report["outputs"][output]["per_sequence"]) == set(SMALL)
        assert report["outputs"][output]["combined"]["frames"] == 71 + 354
    assert sum(line.startswith("COMBINED") for line in lines) == 2
    assert sum(line.startswith("TUD-Campus") for line in lines) == 2
    assert report["sequences"]["ETH-Sunnyday"]["fps"] == 14.0  # its seqinfo.ini's rate
    assert report["tracker"] == "botsort" and report["tracker_config"]["lost_seconds"] > 0
    # Gap filling adds boxes: the two outputs differ.
    assert report["outputs"]["online"]["combined"] != report["outputs"]["gap-filled"]["combined"]

    # The same figures as detstream track + detstream eval-mot, for both outputs.
    tud = root / "TUD-Campus"
    for output, flags in (("online", ["--no-interpolate"]), ("gap-filled", [])):
        tracks, scores = tmp_path / f"{output}.txt", tmp_path / f"{output}.json"
        assert main(["track", "--dets", str(tud / "det.txt"), "--out", str(tracks),
                     *flags]) == 0
        assert main(["eval-mot", "--gt", str(tud / "gt.txt"), "--pred", str(tracks), "--json",
                     str(scores)]) == 0
        cli = json.loads(scores.read_text())
        cli.pop("sequences")
        assert cli == report["outputs"][output]["per_sequence"]["TUD-Campus"], output


def test_bench_mot_public_without_sequences_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    (tmp_path / "empty" / "notes" / "det.txt").write_text("1,-1,1,1,5,5,0.9\n")  # no gt
    assert main(["bench", "mot", "--public", str(tmp_path / "empty")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no sequence folders" in lines[0], lines
    assert str(tmp_path / "empty") in lines[0] and "det.txt, gt.txt, seqinfo.ini" in lines[0]


def test_leave_one_sequence_out_picks_the_best_setting_on_the_others():
    from detstream.stream.bench.tune_public import best, pick_without_each

    # Combined HOTA over all three sequences: "b" is chosen in sample. Without s1, "a" is
    # best on s2+s3; without s2, "c" on s1+s3; without s3, "b" on s1+s2: no pick is "b"'s
    # except the last, and the first two differ from each other.
    full = {"a": 0.50, "b": 0.55, "c": 0.52}
    without = {"a": {"s1": 0.60, "s2": 0.40, "s3": 0.45},
               "b": {"s1": 0.58, "s2": 0.50, "s3": 0.62},
               "c": {"s1": 0.40, "s2": 0.55, "s3": 0.61}}
    assert best(full) == "b"
    assert pick_without_each(without) == {"s1": "a", "s2": "c", "s3": "b"}
    # Ties go to the setting listed first (the order the user gave).
    assert pick_without_each({"x": {"s1": 0.5}, "y": {"s1": 0.5}}) == {"s1": "x"}
    assert best({"y": 0.3, "x": 0.3}) == "y"


def test_make_studies_varies_params_alone_and_the_grid_jointly():
    from detstream.engines.errors import UserInputError
    from detstream.stream.bench.tune_public import make_studies, setting_key
    from detstream.stream.track import ByteTrackConfig

    default = ByteTrackConfig().lost_seconds
    studies = make_studies([("lost_seconds", [1.0, default])],
                           [("match_cost", [0.7, 0.9]), ("lost_seconds", [1.0, default])])
    assert [setting_key(o) for o in studies["lost_seconds"]] == ["lost_seconds=1.0", "default"]
    assert [setting_key(o) for o in studies["grid"]] == [
        "match_cost=0.7,lost_seconds=1.0", "match_cost=0.7", "match_cost=0.9,lost_seconds=1.0",
        "match_cost=0.9"]
    with pytest.raises(UserInputError, match="twice"):
        make_studies([], [("match_cost", [0.7]), ("match_cost", [0.8])])


def test_bench_tune_public_root_holds_each_sequence_out(small_report, tmp_path, capsys):
    from detstream.stream.track import ByteTrackConfig

    root, public, _ = small_report
    out = tmp_path / "tune.json"
    defaults = ByteTrackConfig()
    assert main(["bench", "tune", "--public-root", str(root), "--scenes", "0",
                 "--grid", f"lost_seconds=0.5,{defaults.lost_seconds:g}",
                 "--grid", f"match_cost={defaults.match_cost:g}", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["real_sequences"] == sorted(SMALL) and report["synthetic_sequences"] == []
    study = report["studies"]["grid"]
    assert study["settings"] == ["lost_seconds=0.5", "default"]  # match_cost: its default
    settings = report["settings"]
    # The default setting is bench mot --public's online output, to the digit.
    assert settings["default"]["combined"] == public["outputs"]["online"]["combined"]
    chosen = max(study["settings"], key=lambda k: settings[k]["combined"]["HOTA"])
    assert study["chosen"] == chosen and study["in_sample"] == settings[chosen]["combined"]
    for name, other in (SMALL, SMALL[::-1]):
        # Two sequences: without one, the combined score is the other's own.
        for key in study["settings"]:
            assert settings[key]["without_HOTA"][name] == \
                settings[key]["per_sequence"][other]["HOTA"]
        pick = max(study["settings"], key=lambda k: settings[k]["per_sequence"][other]["HOTA"])
        assert study["picks"][name] == pick
        assert study["held_out_per_sequence"][name] == settings[pick]["per_sequence"][name]
    held = study["held_out"]
    assert held["IDSW"] == sum(s["IDSW"] for s in study["held_out_per_sequence"].values())
    assert "leave-one-sequence-out: held-out combined HOTA" in printed


def test_bench_tune_refuses_a_grid_without_real_sequences(capsys):
    assert main(["bench", "tune", "--grid", "match_cost=0.7,0.8", "--model", "none"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--public-root" in lines[0], lines


def test_bench_tune_public_takes_the_frame_rate_from_seqinfo_unless_given(small_report):
    from detstream.engines.errors import UserInputError
    from detstream.stream.bench.tune_job import parse_public as _public_sequence

    tud = small_report[0] / "TUD-Campus"
    assert _public_sequence(str(tud)) == (tud, None, None)  # seqinfo.ini's, when tracked
    assert _public_sequence(f"{tud}:14") == (tud, 14.0, None)
    assert _public_sequence(f"{tud}:14:320x240") == (tud, 14.0, (320, 240))
    with pytest.raises(UserInputError, match="DIR:FPS:WxH"):
        _public_sequence(f"{tud}:fast")
