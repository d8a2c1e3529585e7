"""Reliability (all stages): bad inputs fail only their own subject, with one clear message.

One workflow run holds the clean tiny demo (demo_a: 2 subjects; demo_b: 1 DICOM subject with
fake PHI) and extra cohorts whose subjects each carry one kind of bad input, built here by
damaging copies of generated demo images (tests/helpers/reliability.py). The run must exit 0 with
--keep-going, list every bad input once in results/qc/failures.tsv (naming subject and file),
leave the clean subjects' outputs byte-identical to a clean run of demo_a alone (the resume
test's run), and write no PHI anywhere under results/.
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import reliability as rh

from radiogenomics.demo.score import computed_map_agreement
from radiogenomics.io import read_json

slow = pytest.mark.slow  # the workflow-run tests; the table test below is fast

# Bad subject -> (cohort, what must appear in the failure's file column, words of its message).
IMAGE_FAILURES = {
    "C01": ("bad_nifti", "C01_t1ce.nii.gz", ["cannot read", "t1ce"]),
    "C02": ("bad_nifti", "C02_t2.nii.gz", ["cannot read", "t2"]),
    "C03": ("bad_nifti", "bad_nifti", ["required sequence flair"]),
    "C04": ("bad_nifti", "C04_flair.nii.gz", ["flair", "field-of-view"]),
    "L01": ("bad_seg", "L01_labels.nii.gz", ["labels are empty"]),
    "L02": ("bad_seg", "L02_labels.nii.gz", ["[7]", "not allowed"]),
    "D01": ("bad_dicom", "bad_dicom/D01/01", ["flair", "not an image", "sr_report.dcm"]),
}
# Labels-table problems (listed in results/qc/labels/{cohort}_issues.tsv, not as failures):
# subject -> (cohort, words of the message).
LABEL_ISSUES = {"N01": ("bad_nifti", ["duplicate subject ID"])}
# Labels rows without images (counted in the intake report, listed in labels_without_images.tsv).
LABELS_WITHOUT_IMAGES = {"Z99": "bad_nifti"}
KINDS = len(IMAGE_FAILURES) + len(LABEL_ISSUES) + len(LABELS_WITHOUT_IMAGES) + 1  # + NaN ADC map
# Cohorts whose every subject is bad: the run ends non-zero naming them, after all other jobs.
NO_USABLE_SUBJECT = ("bad_seg", "bad_dicom")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(resumed clean run dir, bad-input run dir, bad run's exit code, its seconds)."""
    base = tmp_path_factory.getbasetemp()
    bad = rh.bad_input_run(base)
    clean = rh.resume_run(base)
    assert clean["rc"] == 0, rh.log_tail(clean["dir"])
    return clean["dir"], bad["dir"], bad["rc"], bad["seconds"]


@pytest.fixture(scope="module")
def failures(runs) -> pd.DataFrame:
    _, work, rc, _ = runs
    assert rc == 0, rh.log_tail(work)
    return pd.read_csv(work / rh.FAILURES, sep="\t", dtype=str, keep_default_na=False)


@slow
def test_run_exits_zero_with_keep_going(runs):
    _, work, rc, seconds = runs
    assert rc == 0, rh.log_tail(work)
    print(f"bad-input run: {seconds:.0f} s")


@slow
def test_each_bad_image_input_fails_once_naming_subject_and_file(failures):
    for subject, (cohort, file_part, words) in IMAGE_FAILURES.items():
        rows = failures[(failures.cohort == cohort) & (failures.subject == subject)]
        assert len(rows) == 1, (subject, rows.to_dict("records"))
        row = rows.iloc[0]
        assert file_part in row["file"], (subject, row.to_dict())
        assert row["stage"] and row["stage"] != "labels", row.to_dict()
        for word in words:
            assert word.lower() in row["message"].lower(), (subject, word, row.to_dict())
        # One line a person can read, not a traceback.
        assert "\n" not in row["message"] and "Traceback" not in row["message"]


@slow
def test_label_table_problems_are_listed_in_their_issues_table(runs):
    _, work, _, _ = runs
    for subject, (cohort, words) in LABEL_ISSUES.items():
        issues = pd.read_csv(work / f"results/qc/labels/{cohort}_issues.tsv", sep="\t", dtype=str)
        rows = issues[issues["value"] == subject]
        assert len(rows) >= 1, (subject, issues.to_dict("records"))
        assert "labels.tsv" in rows.iloc[0]["file"]
        for word in words:
            assert word.lower() in rows.iloc[0]["message"].lower(), (subject, word)


@slow
def test_labels_without_images_are_counted_once_per_cohort(runs):
    _, work, _, _ = runs
    listed = pd.read_csv(work / "results/qc/labels_without_images.tsv", sep="\t", dtype=str)
    pairs = set(zip(listed.subject, listed.cohort, strict=True))
    assert pairs == set(LABELS_WITHOUT_IMAGES.items())
    intake = pd.read_csv(work / "results/qc/intake_report.tsv", sep="\t", dtype=str)
    summary = intake[intake.status == "labels_without_images"]
    assert summary[["cohort", "n_subjects"]].values.tolist() == [["bad_nifti", "1"]]


@slow
def test_no_clean_subject_is_listed_as_failed(failures):
    # Only subjects that were attempted and failed: no labels-table rows.
    assert set(failures.subject) == set(IMAGE_FAILURES), failures.to_dict("records")
    assert KINDS >= 10


@slow
def test_nan_map_gives_nan_features_with_reason_not_a_failure(runs):
    _, work, _, _ = runs
    sd = work / "results" / "bad_nifti" / "sub-N01" / "ses-01"
    assert not (sd / "qc" / "failure.json").exists()
    hist = pd.read_csv(sd / "features" / "histogram.tsv", sep="\t")
    adc = [c for c in hist.columns if c.startswith("histogram__adc__")]
    t1ce = [c for c in hist.columns if c.startswith("histogram__t1ce__whole_tumor__")]
    assert adc and t1ce
    assert hist[adc].isna().all(axis=None)
    assert hist[t1ce].notna().all(axis=None)
    assert "adc" in str(hist["qc_reason"].iloc[0]).lower()
    merged = pd.read_csv(
        work / "results" / "cohort" / "features.tsv", sep="\t", dtype={"subject": str}
    )
    assert ((merged.cohort == "bad_nifti") & (merged.subject == "N01")).sum() == 1


@slow
def test_maps_computed_from_the_clean_dicom_subject_match_its_planted_maps(runs):
    # B001 ships raw DICOM DSC and DWI: the workflow's maps vs the maps they were simulated from.
    _, work, _, _ = runs
    table = computed_map_agreement(work / "results", work / "sources" / "truth")
    b001 = table[table.subject == "B001"].set_index("map")
    assert set(b001.index) == {"rcbv", "adc"}, table.to_dict("records")
    assert (b001.status == "ok").all(), b001.to_dict("records")
    print(b001[["r_brain", "lesion_median_error"]].round(4).to_dict("index"))
    assert b001.loc["rcbv", "r_brain"] >= 0.95
    assert abs(b001.loc["rcbv", "lesion_median_error"]) <= 0.10
    assert b001.loc["adc", "r_brain"] >= 0.99
    assert abs(b001.loc["adc", "lesion_median_error"]) <= 0.03


@slow
def test_clean_subjects_are_byte_identical_to_a_clean_run(runs):
    clean, work, _, _ = runs
    ref, bad = rh.result_files(clean), rh.result_files(work)
    for subject in rh.CLEAN_SUBJECTS:
        prefix = f"results/demo_a/sub-{subject}/"
        feats = [k for k in ref if k.startswith(prefix + "ses-01/features/")]
        assert len(feats) >= 5, feats
        assert rh.differing(ref, bad, prefix) == []
    merged = pd.read_csv(work / "results" / "cohort" / "features.tsv", sep="\t", dtype=str)
    got = set(zip(merged.cohort, merged.subject, strict=True))
    assert {("demo_a", s) for s in rh.CLEAN_SUBJECTS} | {("demo_b", "B001")} <= got


@slow
def test_failed_subjects_leave_markers_and_no_partial_files(runs):
    _, work, _, _ = runs
    for subject, (cohort, _, _) in IMAGE_FAILURES.items():
        marker = work / "results" / cohort / f"sub-{subject}" / "ses-01" / "qc" / "failure.json"
        rec = read_json(marker)
        assert rec["subject"] == subject and rec["cohort"] == cohort
    assert rh.temp_leftovers(work) == []


@slow
def test_no_phi_in_any_output(runs):
    _, work, _, _ = runs
    phi = (work / "resources/demo/truth/phi_strings.txt").read_text().splitlines()
    assert "FAKEPHI^JANE" in phi and len(phi) >= 6
    # The DICOM subject went through the whole chain, so there is something to scan.
    assert (work / "results/demo_b/sub-B001/ses-01/features/radiomics.tsv").stat().st_size > 0
    assert list((work / "results").rglob("*.png")), "no PNG written to scan"
    assert rh.phi_hits(work, phi) == []


@slow
def test_cohorts_without_a_usable_subject_are_named_with_their_reason(runs, tmp_path):
    from radiogenomics.cohort.aggregate import check_usable_subjects

    _, work, _, _ = runs
    cohorts = ["demo_a", "demo_b", "bad_nifti", *NO_USABLE_SUBJECT]
    out = tmp_path / "usable.tsv"
    with pytest.raises(SystemExit) as stop:
        check_usable_subjects(
            cohorts, work / "results/cohort/features.tsv", work / rh.FAILURES, out
        )
    message = str(stop.value)
    for cohort in NO_USABLE_SUBJECT:
        assert f"cohort {cohort}: no usable subject" in message, message
    # bad_seg: an empty label image and an undefined label value, both refused at intake; the
    # tie goes to the alphabetically first reason.
    assert (
        "cohort bad_seg: no usable subject (2 failed; most common reason: intake: provided labels "
        "contain values [7]" in message
    ), message
    usable = pd.read_csv(out, sep="\t").set_index("cohort")["usable"]
    assert usable["demo_a"] >= 1 and usable["bad_nifti"] >= 1
