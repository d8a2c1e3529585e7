"""WHO CNS5 integrated types (cohort stage): every rule, conflicts, missing labels, UCSF-PDGM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radiogenomics.cohort.who_cns5 import (
    ASTRO,
    DMG,
    GBM,
    NOT_DERIVABLE,
    OLIGO,
    OUTPUT_COLUMNS,
    egfr_amplification_status,
    select_subgroup,
    who_cns5_types,
)


def _one(location=None, **labels) -> dict:
    """Type of a single subject given as keyword labels."""
    df = pd.DataFrame([{"subject": "S1", **labels}])
    out = who_cns5_types(df, location=location)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    return out.iloc[0].to_dict()


def test_oligodendroglioma_grade_2_3_and_cdkn2ab_note() -> None:
    r = _one(idh="mutant", codeletion_1p19q="codeleted", cdkn2ab="intact")
    assert (r["who_cns5"], r["grade"], r["missing"]) == (OLIGO, "2-3", "")
    assert "codeletion_1p19q=codeleted" in r["basis"]
    r = _one(idh="mutant", codeletion_1p19q="codeleted", cdkn2ab="deleted")
    assert r["who_cns5"] == OLIGO and "grade 3" in r["basis"]
    assert r["who_cns5_code"] == "oligodendroglioma_idhmut_codel"


def test_astrocytoma_grades_by_cdkn2ab() -> None:
    assert _one(idh="mutant", codeletion_1p19q="intact", cdkn2ab="deleted")["grade"] == "4"
    r = _one(idh="mutant", codeletion_1p19q="intact", cdkn2ab="intact")
    assert (r["who_cns5"], r["grade"], r["missing"]) == (ASTRO, "2-3", "")
    r = _one(idh="mutant", codeletion_1p19q="intact")
    assert (r["who_cns5"], r["grade"], r["missing"]) == (ASTRO, "2-4", "cdkn2ab")


def test_idh_mutant_without_1p19q_not_derivable() -> None:
    r = _one(idh="mutant", codeletion_1p19q="", cdkn2ab="deleted")
    assert (r["who_cns5"], r["grade"], r["missing"]) == (NOT_DERIVABLE, "", "codeletion_1p19q")


def test_midline_glioma_location_flag_and_assumption() -> None:
    r = _one(idh="wildtype", h3k27="altered")
    assert (r["who_cns5"], r["grade"]) == (DMG, "4")
    assert "midline location ASSUMED" in r["basis"]
    r = _one(idh="wildtype", h3k27="altered", midline="yes")
    assert r["who_cns5"] == DMG and "midline=yes" in r["basis"] and "ASSUMED" not in r["basis"]
    # A location given separately (e.g. from the location features) is used per subject.
    r = _one(location={"S1": False}, idh="wildtype", h3k27="altered")
    assert r["who_cns5"] == NOT_DERIVABLE and "outside the midline" in r["conflict"]
    # IDH unknown does not block the H3 K27 call.
    assert _one(h3k27="altered", midline=1)["who_cns5"] == DMG


def test_idh_mutant_and_h3k27_altered_is_a_conflict() -> None:
    r = _one(idh="mutant", codeletion_1p19q="intact", h3k27="altered")
    assert r["who_cns5"] == NOT_DERIVABLE and "IDH-mutant and H3 K27-altered" in r["conflict"]


@pytest.mark.parametrize(
    "labels, decided",
    [
        ({"tert": "mutant"}, "tert=mutant"),
        ({"egfr_amplification": "amplified"}, "egfr_amplification=amplified"),
        ({"chr7_gain_chr10_loss": "present"}, "chr7_gain_chr10_loss=present"),
        ({"egfr": "amplified", "egfrviii": "negative"}, "egfrviii=negative"),
    ],
)
def test_molecular_glioblastoma(labels: dict, decided: str) -> None:
    r = _one(idh="wildtype", h3k27="wildtype", age=63, **labels)
    assert (r["who_cns5"], r["grade"]) == (GBM, "4")
    assert decided in r["basis"] and "histological glioblastoma" in r["basis"]
    assert r["missing"] == ""


def test_egfrviii_alone_is_never_amplification() -> None:
    amp, note = egfr_amplification_status({"egfrviii": "positive"})
    assert amp is None and note == ""
    amp, note = egfr_amplification_status({"egfr": "amplified", "egfrviii": "positive"})
    assert amp is None and "EGFRvIII" in note
    amp, _ = egfr_amplification_status({"egfr": "amplified"})
    assert amp is None
    # Merged column, vIII only: no glioblastoma call from EGFR, amplification listed as needed.
    r = _one(
        idh="wildtype", h3k27="wildtype", tert="wildtype", egfr="amplified", egfrviii="positive"
    )
    assert r["who_cns5"] == NOT_DERIVABLE
    assert r["missing"] == "egfr_amplification,chr7_gain_chr10_loss,histology"
    # The split column wins over the merged one.
    r = _one(
        idh="wildtype", egfr_amplification="not_amplified", egfrviii="positive", egfr="amplified"
    )
    assert r["who_cns5"] == NOT_DERIVABLE and r["conflict"] == ""


def test_egfr_columns_disagreeing_are_reported() -> None:
    r = _one(
        idh="wildtype",
        tert="mutant",
        egfr="amplified",
        egfr_amplification="not_amplified",
        egfrviii="negative",
    )
    assert r["who_cns5"] == GBM and "both negative" in r["conflict"]
    r = _one(idh="wildtype", tert="mutant", egfr="not_amplified", egfr_amplification="amplified")
    assert "egfr=not_amplified (merged)" in r["conflict"]


def test_idh_wildtype_without_markers_needs_histology() -> None:
    r = _one(
        idh="wildtype",
        h3k27="wildtype",
        tert="wildtype",
        egfr_amplification="not_amplified",
        chr7_gain_chr10_loss="absent",
    )
    assert (r["who_cns5"], r["missing"]) == (NOT_DERIVABLE, "histology")
    r = _one(idh="wildtype", tert="wildtype")
    assert r["missing"] == "h3k27,egfr_amplification,chr7_gain_chr10_loss,histology"
    # One positive marker suffices even when the others are unknown; h3k27 stays listed.
    r = _one(idh="wildtype", tert="mutant")
    assert r["who_cns5"] == GBM and r["missing"] == "h3k27"
    assert "assumed not altered" in r["basis"] and "adult assumed" in r["basis"]


def test_idh_wildtype_child_not_adult_type() -> None:
    r = _one(idh="wildtype", h3k27="wildtype", tert="mutant", age=9)
    assert r["who_cns5"] == NOT_DERIVABLE and r["missing"] == "paediatric_markers"


def test_codeleted_idh_wildtype_conflict_still_types_gbm() -> None:
    r = _one(idh="wildtype", codeletion_1p19q="codeleted", tert="mutant", h3k27="wildtype")
    assert r["who_cns5"] == GBM and "not an oligodendroglioma" in r["conflict"]


def test_idh_unknown() -> None:
    r = _one(codeletion_1p19q="codeleted", tert="mutant")
    assert (r["who_cns5"], r["missing"]) == (NOT_DERIVABLE, "idh,h3k27")
    assert _one(h3k27="wildtype", tert="mutant")["missing"] == "idh"


def test_bad_values_name_subject_and_column() -> None:
    with pytest.raises(ValueError, match=r"'S1', column 'idh': value 'mutated'"):
        _one(idh="mutated")
    with pytest.raises(ValueError, match="midline"):
        _one(idh="wildtype", h3k27="altered", midline="maybe")
    with pytest.raises(ValueError, match="subject"):
        who_cns5_types(pd.DataFrame({"idh": ["mutant"]}))


def test_blank_and_nan_are_unknown_and_columns_optional() -> None:
    df = pd.DataFrame(
        {
            "subject": ["a", "b", "c"],
            "idh": ["mutant", np.nan, "wildtype"],
            "codeletion_1p19q": ["intact", "", None],
        }
    )
    out = who_cns5_types(df)
    assert out["who_cns5"].tolist() == [ASTRO, NOT_DERIVABLE, NOT_DERIVABLE]
    assert out["subject"].tolist() == ["a", "b", "c"]


def test_select_subgroup_rows_and_summary() -> None:
    df = pd.DataFrame(
        {
            "subject": list("abcdef"),
            "idh": ["mutant", "mutant", "wildtype", "", "mutant", np.nan],
            "mgmt": ["methylated", "unmethylated", "methylated", "methylated", "", "methylated"],
        }
    )
    rows, summary = select_subgroup(df, {"idh": "mutant"})
    assert rows["subject"].tolist() == ["a", "b", "e"]
    assert summary == {
        "n_total": 6,
        "idh_matched": 3,
        "idh_other": 1,
        "idh_unknown": 2,
        "within": "idh=mutant",
        "n_selected": 3,
    }
    rows, summary = select_subgroup(df, {"idh": ["mutant"], "mgmt": "methylated"})
    assert rows["subject"].tolist() == ["a"] and summary["n_selected"] == 1
    assert summary["mgmt_unknown"] == 1
    with pytest.raises(ValueError, match="vocabulary"):
        select_subgroup(df, {"idh": "mutated"})
    with pytest.raises(ValueError, match="not in the labels"):
        select_subgroup(df, {"tert": "mutant"})


def test_select_subgroup_on_who_types() -> None:
    labels = pd.DataFrame(
        {
            "subject": ["a", "b", "c"],
            "idh": ["mutant", "mutant", "wildtype"],
            "codeletion_1p19q": ["codeleted", "intact", "intact"],
            "tert": ["mutant", "wildtype", "mutant"],
        }
    )
    typed = labels.merge(who_cns5_types(labels), on="subject")
    rows, summary = select_subgroup(typed, {"who_cns5_code": "glioblastoma_idhwt"})
    assert rows["subject"].tolist() == ["c"] and summary["n_selected"] == 1


def _pdgm_labels(shared_data: Path) -> pd.DataFrame:
    """UCSF-PDGM metadata mapped to canonical labels (relative co-deletion left unknown)."""
    raw = pd.read_csv(shared_data / "tables/ucsf_pdgm/UCSF-PDGM-metadata_v2.csv", dtype=str)
    codel = {"co-deletion": "codeleted", "intact": "intact"}
    return pd.DataFrame(
        {
            "subject": raw["ID"],
            "idh": np.where(raw["IDH"] == "wildtype", "wildtype", "mutant"),
            "codeletion_1p19q": raw["1p/19q"].str.lower().map(codel).fillna(""),
            "age": raw["Age at MRI"].astype(float),
            "diagnosis": raw["Final pathologic diagnosis (WHO 2021)"],
            "grade_path": raw["WHO CNS Grade"],
        }
    )


def test_real_ucsf_pdgm_agrees_with_pathology(shared_data: Path) -> None:
    """Every subject typed from IDH + 1p/19q agrees with the published WHO 2021 diagnosis."""
    labels = _pdgm_labels(shared_data)
    out = labels.merge(who_cns5_types(labels), on="subject")
    derived = out[out["who_cns5"] != NOT_DERIVABLE]
    # 103 IDH-mutant: 9 codeleted oligodendrogliomas, 84 intact astrocytomas; the 10 others have
    # only a "relative co-deletion" (6) or no 1p/19q result (4) and stay underivable.
    assert len(derived) == 93 and (derived["who_cns5"] == ASTRO).sum() == 84
    oligo = "Oligodendroglioma, IDH-mutant, 1p/19q-codeleted"
    expected = derived["diagnosis"].replace({oligo: OLIGO})
    assert (derived["who_cns5"] == expected).all()
    # Without CDKN2A/B the astrocytoma grade is the range 2-4, which holds every pathology grade.
    astro = derived[derived["who_cns5"] == ASTRO]
    assert set(astro["grade"]) == {"2-4"} and set(astro["grade_path"]) == {"2", "3", "4"}
    assert set(derived.loc[derived["who_cns5"] == OLIGO, "grade_path"]) <= {"2", "3"}
    # IDH-wildtype (398): no TERT/EGFR/+7/-10 in this table, so none is called glioblastoma.
    wt = out[out["idh"] == "wildtype"]
    assert len(wt) == 398 and (wt["who_cns5"] == NOT_DERIVABLE).all()
    assert (wt["missing"] == "h3k27,tert,egfr_amplification,chr7_gain_chr10_loss,histology").all()
