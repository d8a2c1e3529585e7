"""Rule preprocess_subject (imaging chain): one session's preprocessing steps, in order.

One job runs the whole chain: each step needs the one before, and a job per step would cost a
Python start-up and a DAG node per session. A failing step is still recorded under its own stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from radiogenomics.imaging.atlas import atlas_subject
from radiogenomics.imaging.bias import bias_correct_subject
from radiogenomics.imaging.common import set_threads
from radiogenomics.imaging.coregister import RigidSettings, coregister_subject
from radiogenomics.imaging.normalise import normalise_subject
from radiogenomics.imaging.skullstrip import skullstrip_subject
from radiogenomics.paths import entities_from_path, subject_seed
from radiogenomics.physiology.compute import compute_session_maps
from radiogenomics.runner import Step, run_subject_steps


def preprocess_steps(
    inputs: Mapping[str, str], out: Mapping[str, str], settings: Mapping[str, Any]
) -> list[Step]:
    """The six steps of `preprocess_subject` for the session the outputs belong to.

    `settings`: `preprocess` (the validated config section), `maps` (quantitative maps: no N4,
    no z-score), `seed` (the run's), and per cohort: `skull_stripped` (declared already
    stripped), `intensities` (auto/raw/normalised), `bias_corrected` (N4 skipped).
    """
    cfg, maps = settings["preprocess"], tuple(settings["maps"])
    cohort, subject, session = entities_from_path(out["manifest"])
    seed = subject_seed(settings["seed"], cohort, subject, session)
    strip, atlas, norm = cfg["skullstrip"], cfg["atlas"], cfg["normalisation"]
    phys = cfg["physiology"]

    def compute_maps():
        # Raw DSC/DWI -> maps/; maps/manifest.json lists them with the intake's images.
        compute_session_maps(
            inputs["manifest"],
            out["maps_manifest"],
            optional_maps=maps,
            prefer=phys["prefer"],
            motion_correction=bool(phys["motion_correction"]),
            seed=seed,
        )

    def bias_correct():
        bias_correct_subject(
            out["maps_manifest"],
            out["n4_manifest"],
            shrink_factor=cfg["n4_shrink_factor"],
            iterations=tuple(cfg["n4_iterations"]),
            fit_spacing_mm=cfg["n4_fit_spacing_mm"],
            maps=maps,
            intensities=settings["intensities"][cohort],
            bias_corrected=bool(settings["bias_corrected"][cohort]),
        )

    def coregister():
        coregister_subject(
            out["n4_manifest"],
            out["coreg_manifest"],
            out["similarity"],
            reference=cfg["reference_sequence"],
            resample_mm=cfg["resample_mm"],
            settings=RigidSettings.from_config(cfg["coregistration"]),
            seed=seed,
        )

    def skullstrip():
        skullstrip_subject(
            out["coreg_manifest"],
            out["mask"],
            method=strip["method"],
            already_stripped=bool(settings["skull_stripped"][cohort]),
            input_sequences=tuple(strip["input_sequences"]),
            mode=strip["mode"],
            tta=strip["tta"],
            device=strip["device"],
            precision=strip["precision"],
            volume_ml_range=tuple(strip["brain_volume_ml_range"]),
        )

    def register_atlas():
        atlas_subject(
            out["coreg_manifest"],
            out["mask"],
            out["affine"],
            out["template"],
            out["wm"],
            out["hemisphere"],
            transform=atlas["transform"],
            template_files=(inputs["template"], inputs["template_wm"]),
            mask_abnormal=atlas["mask_abnormal"],
            warp_out=out.get("warp"),
            invwarp_out=out.get("invwarp"),
            seed=seed,
        )

    def normalise():
        normalise_subject(
            out["coreg_manifest"],
            out["mask"],
            out["wm"],
            out["hemisphere"],
            out["manifest"],
            method=norm["method"],
            maps=maps,
            relative_maps=tuple(norm["relative_maps"]),
            wm_threshold=norm["wm_probability_threshold"],
        )

    return [
        ("compute_maps", compute_maps),
        ("bias_correct_n4", bias_correct),
        ("coregister_to_reference", coregister),
        ("skullstrip_brain", skullstrip),
        ("register_to_atlas", register_atlas),
        ("normalise_intensities", normalise),
    ]


def run_preprocess_subject(
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    settings: Mapping[str, Any],
    log: str | None,
    threads: int = 1,
) -> None:
    """Rule preprocess_subject: N4 to normalisation for one session, under failure isolation."""
    set_threads(threads)
    run_subject_steps(
        preprocess_steps(inputs, outputs, settings),
        list(outputs.values()),
        log,
        job="preprocess_subject",
    )
