"""``detstream bench tune --public-root DIR``: tracker settings chosen on real sequences.

The objective is TrackEval's combined HOTA (``COMBINED_SEQ``, not a mean of sequences) of the
online botsort output over every real MOTChallenge sequence under ``DIR``, each tracked at its
``seqinfo.ini`` frame rate and size. A study is a list of settings to choose from: each
``--param`` varied alone (the others at their defaults), and the cartesian product of the
``--grid`` parameters.

Leave-one-sequence-out checks the choice: for each real sequence, the setting with the best
combined HOTA over the *other* real sequences is picked (from TrackEval's per-sequence results
combined by TrackEval's own code, no second scoring), the sequence's output with that setting
is taken, and those held-out outputs are scored together as one folder. That combined score
stands beside the in-sample one of the setting chosen on all sequences.

Synthetic scenes (``bench mot``'s held-out scenes, both detection streams) are a second check:
their mean HOTA per setting is reported, never used to choose.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from detstream.engines.data.synthetic.config import SceneConfig
from detstream.engines.errors import UserInputError
from detstream.engines.metrics.mot import (
    MotScores,
    combine_mot,
    evaluate_mot,
    evaluate_mot_detailed,
)
from detstream.stream.bench.common import quiet
from detstream.stream.bench.mot import Detector, scene_name
from detstream.stream.bench.public import load_sequences
from detstream.stream.bench.tune import (
    TrackedSequence,
    measure_scene,
    score_setting,
    track_sequence,
)
from detstream.stream.track import ByteTrackConfig

Key = TypeVar("Key")


def setting_key(options: Mapping[str, object]) -> str:
    """A setting's name: ``default``, or ``NAME=VALUE,NAME=VALUE``."""
    return ",".join(f"{k}={v}" for k, v in options.items()) or "default"


def make_studies(params: Sequence[tuple[str, list]], grid: Sequence[tuple[str, list]]
                 ) -> dict[str, list[dict]]:
    """The settings to choose among: ``{NAME: [{NAME: v}, ...]}`` for each parameter varied
    alone and ``{"grid": [...]}`` for the product of the ``grid`` parameters. Values equal to
    the default are left out of a setting, so every default setting is ``{}``."""
    defaults = ByteTrackConfig().to_dict()
    names = [name for name, _ in grid]
    if len(set(names)) < len(names):
        raise UserInputError(f"--grid names a parameter twice: {', '.join(names)}")

    def setting(pairs: Sequence[tuple[str, object]]) -> dict:
        return {name: value for name, value in pairs if value != defaults[name]}

    studies = {name: [setting([(name, v)]) for v in values] for name, values in params}
    if grid:
        studies["grid"] = [setting(list(zip(names, combo, strict=True)))
                           for combo in itertools.product(*(values for _, values in grid))]
    return studies


def best(scores: Mapping[Key, float]) -> Key:
    """The key with the highest score; the first listed among equals."""
    keys = list(scores)
    return max(keys, key=lambda k: (scores[k], -keys.index(k)))


def pick_without_each(without: Mapping[Key, Mapping[str, float]]) -> dict[str, Key]:
    """Leave-one-sequence-out picks.

    Args:
        without: ``{setting: {sequence: score over all the other sequences}}``.

    Returns:
        Per sequence, the setting with the best score over the other sequences (the first
        listed among equals).
    """
    sequences = list(next(iter(without.values())))
    return {name: best({k: scores[name] for k, scores in without.items()})
            for name in sequences}


@dataclass(frozen=True)
class SettingScores:
    """One setting's scores.

    Attributes:
        options: the tracker overrides.
        combined: TrackEval's combined scores over all real sequences.
        sequences: each real sequence's scores.
        without: per real sequence, the combined scores over all the others.
        synthetic_hota: the mean HOTA over the synthetic sequences, or None without any.
        folder: where the real sequences' tracks are (``SEQ.txt``).
    """

    options: dict
    combined: MotScores
    sequences: dict[str, MotScores]
    without: dict[str, MotScores]
    synthetic_hota: float | None
    folder: Path


def score_real(sequences: Sequence[TrackedSequence], options: dict, folder: Path,
               check_rows: bool = True
               ) -> tuple[MotScores, dict[str, MotScores], dict[str, MotScores]]:
    """Track the real ``sequences`` with ``options`` into ``folder`` and score them with one
    TrackEval run: ``(combined, per sequence, per sequence the combined without it)``.
    ``check_rows=False``: the truth was read before, the tracks are ours; TrackEval alone
    reads them."""
    folder.mkdir(parents=True)
    for sequence in sequences:
        track_sequence(sequence, options, folder / f"{sequence.scene}.txt")
    scored = evaluate_mot_detailed(sequences[0].gt_root, folder, check_rows)
    total = scored.combined.frames
    without = {name: combine_mot({n: r for n, r in scored.raw.items() if n != name},
                                 total - scored.sequences[name].frames)
               for name in scored.sequences}
    return scored.combined, scored.sequences, without


def held_out(study: list[str], settings: Mapping[str, SettingScores], gt_root: Path,
             folder: Path) -> tuple[dict[str, str], MotScores, dict[str, MotScores]]:
    """Leave-one-sequence-out for the settings of one ``study`` (their keys): the picks, and
    TrackEval's scores of the picked outputs, gathered in ``folder`` and scored together
    against the truth in ``gt_root``."""
    picks = pick_without_each({k: {n: s.HOTA for n, s in settings[k].without.items()}
                               for k in study})
    folder.mkdir(parents=True)
    for name, key in picks.items():
        shutil.copyfile(settings[key].folder / f"{name}.txt", folder / f"{name}.txt")
    combined, per_sequence = evaluate_mot(gt_root, folder)
    return picks, combined, per_sequence


def score_settings(studies: Mapping[str, list[dict]], real: Sequence[TrackedSequence],
                   synthetic: Sequence[TrackedSequence], work: Path,
                   progress: Callable[[str], None] = quiet) -> dict[str, SettingScores]:
    """Every distinct setting of the ``studies`` scored once: the real sequences tracked into
    ``work/settings/NNN`` and scored by TrackEval, the synthetic ones' mean HOTA beside."""
    settings: dict[str, SettingScores] = {}
    for options in (o for study in studies.values() for o in study):
        key = setting_key(options)
        if key in settings:
            continue
        folder = work / "settings" / f"{len(settings):03d}"
        combined, per_sequence, without = score_real(real, options, folder,
                                                     check_rows=not settings)
        synth = (float(np.mean([s.HOTA for s in score_setting(synthetic, options, work)
                                .values()])) if synthetic else None)
        settings[key] = SettingScores(options, combined, per_sequence, without, synth, folder)
        progress(f"{key}: combined HOTA {combined.HOTA:.4f}, MOTA {combined.MOTA:.4f}, "
                 f"IDF1 {combined.IDF1:.4f}"
                 + (f"; synthetic mean HOTA {synth:.4f}" if synth is not None else ""))
    return settings


def study_report(keys: list[str], settings: Mapping[str, SettingScores], gt_root: Path,
                 folder: Path) -> dict:
    """One study's choice in sample and its leave-one-sequence-out check (:func:`held_out`)."""
    chosen = best({k: settings[k].combined.HOTA for k in keys})
    picks, combined, per_sequence = held_out(keys, settings, gt_root, folder)
    return {"settings": keys, "default": "default" if "default" in keys else None,
            "chosen": chosen, "in_sample": settings[chosen].combined.to_dict(),
            "picks": picks, "held_out": combined.to_dict(),
            "held_out_per_sequence": {n: s.to_dict() for n, s in per_sequence.items()}}


def tune_public(root: Path, configs: list[SceneConfig], detector: Detector | None,
                params: Sequence[tuple[str, list]], grid: Sequence[tuple[str, list]] = (),
                progress: Callable[[str], None] = quiet) -> dict:
    """Score every setting of every study (:func:`make_studies`) on the real sequences under
    ``root`` and on the synthetic scenes ``configs``; choose by combined HOTA on the real ones,
    with the leave-one-sequence-out check (see the module's docstring).

    Returns:
        ``{"root", "objective", "real_sequences", "synthetic_sequences", "defaults",
        "settings": {KEY: {options, combined, per_sequence, without_HOTA,
        synthetic_mean_HOTA}}, "studies": {NAME: {settings, default, chosen, in_sample,
        picks, held_out, held_out_per_sequence}}, "seconds": {...}}``, scores as dicts.

    Raises:
        UserInputError: fewer than two real sequences under ``root``.
    """
    studies = make_studies(params, grid)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="detstream-tune-public-") as tmp:
        work = Path(tmp)
        real = load_sequences(root, work / "gt-real")
        if len(real) < 2:
            raise UserInputError(f"--public-root {root}: leave-one-sequence-out needs at least "
                                 f"two sequences, found {len(real)}")
        synthetic: list[TrackedSequence] = []
        for config in configs:
            synthetic += measure_scene(config, detector, work / "gt")
            progress(f"scene {scene_name(config)}: measured")
        measured = time.perf_counter() - start
        settings = score_settings(studies, real, synthetic, work, progress)
        scored = time.perf_counter() - start - measured
        studied = {name: study_report(list(dict.fromkeys(setting_key(o) for o in study)),
                                      settings, work / "gt-real", work / "held-out" / name)
                   for name, study in studies.items()}
    defaults = ByteTrackConfig().to_dict()
    return {
        "root": str(root),
        "objective": "TrackEval's combined HOTA over the real sequences (online output)",
        "real_sequences": [s.scene for s in real],
        "synthetic_sequences": [s.name for s in synthetic],
        "defaults": {n: defaults[n] for n, _ in (*params, *grid)},
        "settings": {k: {"options": s.options, "combined": s.combined.to_dict(),
                         "per_sequence": {n: m.to_dict() for n, m in s.sequences.items()},
                         "without_HOTA": {n: m.HOTA for n, m in s.without.items()},
                         "synthetic_mean_HOTA": s.synthetic_hota}
                     for k, s in settings.items()},
        "studies": studied,
        "seconds": {"measure": round(measured, 3),
                    "per_setting": round(scored / max(len(settings), 1), 3)},
    }


def print_tune_public(report: dict) -> None:
    """The table ``detstream bench tune --public-root`` prints: per study, each setting's
    combined scores on the real sequences and the synthetic check, then the held-out line."""
    synthetic = len(report["synthetic_sequences"])
    print(f"{len(report['real_sequences'])} real sequences, TrackEval combined (online "
          f"output); {synthetic} synthetic sequences as a check (mean HOTA)")
    width = max(len("setting"), *(len(k) for k in report["settings"])) + 2
    print(f"{'study':<16}{'setting':<{width}}{'HOTA':>8}{'MOTA':>8}{'IDF1':>8}{'IDSW':>6}"
          f"{'synth':>8}")
    for name, study in report["studies"].items():
        for key in study["settings"]:
            entry = report["settings"][key]
            s = MotScores(**entry["combined"])
            synth = entry["synthetic_mean_HOTA"]
            marks = ("  default" if key == study["default"] else "") + \
                ("  chosen" if key == study["chosen"] else "")
            print(f"{name:<16}{key:<{width}}{s.HOTA:>8.4f}{s.MOTA:>8.4f}{s.IDF1:>8.4f}"
                  f"{s.IDSW:>6}{'' if synth is None else f'{synth:.4f}':>8}{marks}".rstrip())
        held, chosen = MotScores(**study["held_out"]), MotScores(**study["in_sample"])
        print(f"{name:<16}leave-one-sequence-out: held-out combined HOTA {held.HOTA:.4f} "
              f"MOTA {held.MOTA:.4f} IDF1 {held.IDF1:.4f} IDSW {held.IDSW} (in-sample, "
              f"chosen: HOTA {chosen.HOTA:.4f})")
        for key in dict.fromkeys(study["picks"].values()):
            held_by = [n for n, k in study["picks"].items() if k == key]
            print(f"{'':<16}{key} picked without {', '.join(held_by)}")
