"""Rule preprocess_subject: anat/ -> N4, co-registration, brain mask, MNI152 atlas, normalisation.

One job runs the whole per-session imaging chain (one Python start-up instead of five, and a
five-times smaller DAG for large cohorts); a failing step is still recorded under its own stage.
"""

from radiogenomics.imaging.atlas import atlas_subject
from radiogenomics.imaging.bias import bias_correct_subject
from radiogenomics.imaging.common import set_threads
from radiogenomics.imaging.coregister import RigidSettings, coregister_subject
from radiogenomics.imaging.normalise import normalise_subject
from radiogenomics.imaging.skullstrip import skullstrip_subject
from radiogenomics.paths import subject_seed
from radiogenomics.runner import run_subject_steps

sm = snakemake  # noqa: F821 - injected by Snakemake
cfg = sm.params.config
out = sm.output
wc = sm.wildcards
seed = subject_seed(sm.params.seed, wc.cohort, wc.subject, wc.session)


def bias_correct():
    bias_correct_subject(
        sm.input.manifest,
        out.n4_manifest,
        shrink_factor=cfg["n4_shrink_factor"],
        iterations=tuple(cfg["n4_iterations"]),
        fit_spacing_mm=cfg["n4_fit_spacing_mm"],
        maps=tuple(sm.params.maps),
    )


def coregister():
    coregister_subject(
        out.n4_manifest,
        out.coreg_manifest,
        out.similarity,
        reference=cfg["reference_sequence"],
        resample_mm=cfg["resample_mm"],
        settings=RigidSettings.from_config(cfg["coregistration"]),
        seed=seed,
    )


def skullstrip():
    strip = cfg["skullstrip"]
    skullstrip_subject(
        out.coreg_manifest,
        out.mask,
        method=strip["method"],
        already_stripped=bool(sm.params.skull_stripped[wc.cohort]),
        input_sequences=tuple(strip["input_sequences"]),
        mode=strip["mode"],
        tta=strip["tta"],
        device=strip["device"],
        precision=strip["precision"],
        volume_ml_range=tuple(strip["brain_volume_ml_range"]),
    )


def register_atlas():
    atlas = cfg["atlas"]
    atlas_subject(
        out.coreg_manifest,
        out.mask,
        out.affine,
        out.template,
        out.wm,
        out.hemisphere,
        transform=atlas["transform"],
        template_files=(sm.input.template, sm.input.template_wm),
        mask_abnormal=atlas["mask_abnormal"],
        warp_out=getattr(out, "warp", None),
        invwarp_out=getattr(out, "invwarp", None),
        seed=seed,
    )


def normalise():
    norm = cfg["normalisation"]
    normalise_subject(
        out.coreg_manifest,
        out.mask,
        out.wm,
        out.hemisphere,
        out.manifest,
        method=norm["method"],
        maps=tuple(sm.params.maps),
        relative_maps=tuple(norm["relative_maps"]),
        wm_threshold=norm["wm_probability_threshold"],
    )


if __name__ == "__main__":
    set_threads(sm.threads)
    run_subject_steps(
        sm,
        [
            ("bias_correct_n4", bias_correct),
            ("coregister_to_reference", coregister),
            ("skullstrip_brain", skullstrip),
            ("register_to_atlas", register_atlas),
            ("normalise_intensities", normalise),
        ],
    )
