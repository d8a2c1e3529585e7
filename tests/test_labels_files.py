"""Labels tables as curators export them (intake): encodings, Excel, repeated columns, bad cells.

Each test writes the file the way a spreadsheet program or a curator does and checks what the
labels stage gets: the right values, or a ConfigError naming the file and the problem.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from radiogenomics.errors import ConfigError
from radiogenomics.intake.report import intake_report, validate_cohort_labels
from radiogenomics.labels import decode_table_text, load_labels, read_table

ROWS = [
    ("subject", "idh", "age", "site"),
    ("A1", "mutant", "40", "Zürich Universitätsspital"),
    ("A2", "wildtype", "61.5", "Hôpital Lariboisière – Paris"),
]


def _text(rows, sep: str) -> str:
    return "".join(sep.join(r) + "\r\n" for r in rows)


def _expected(df: pd.DataFrame) -> None:
    assert list(df["subject"]) == ["A1", "A2"]
    assert list(df["idh"]) == ["mutant", "wildtype"]
    assert list(df["age"]) == [40.0, 61.5]
    assert list(df["site"]) == [ROWS[1][3], ROWS[2][3]]
    assert list(df.index) == [2, 3]


@pytest.mark.parametrize(
    "encoding,bom,sep,name",
    [
        ("utf-8", b"", ",", "labels.csv"),
        ("utf-8", codecs.BOM_UTF8, ",", "labels.csv"),  # Excel "CSV UTF-8"
        ("utf-16-le", codecs.BOM_UTF16_LE, "\t", "labels.txt"),  # Excel "Unicode Text"
        ("utf-16-be", codecs.BOM_UTF16_BE, "\t", "labels.tsv"),
        ("cp1252", b"", ";", "labels.csv"),  # Excel "CSV" on a European Windows: ; and cp1252
    ],
)
def test_common_encodings_read_the_same_values(tmp_path, encoding, bom, sep, name):
    p = tmp_path / name
    p.write_bytes(bom + _text(ROWS, sep).encode(encoding))
    _expected(load_labels(p))


def test_latin1_file_no_longer_crashes_validation(tmp_path):
    p = tmp_path / "labels.tsv"
    rows = [("subject", "idh", "site"), ("A1", "mutant", "Universitätsspital Zürich")]
    p.write_bytes(_text(rows, "\t").encode("latin-1"))
    clean, issues = validate_cohort_labels("c", str(p), {}, ["A1"])
    assert issues.empty, issues.to_dict("records")
    assert clean.loc[0, "site"] == "Universitätsspital Zürich" and clean.loc[0, "idh"] == "mutant"


def test_decoding_order_and_binary_refusal(tmp_path):
    assert decode_table_text("é".encode(), "x") == ("é", "utf-8")
    assert decode_table_text("é€".encode("cp1252"), "x") == ("é€", "cp1252")
    # 0x81 is undefined in cp1252: Latin-1 takes it rather than failing.
    assert decode_table_text(b"a\x81", "x") == ("a\x81", "latin-1")
    # UTF-16 without a BOM is recognised by its NUL bytes.
    assert decode_table_text("subject\tidh".encode("utf-16-le"), "x")[0] == "subject\tidh"
    with pytest.raises(ConfigError, match=r"labels\.csv is binary"):
        decode_table_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01", "labels.csv")
    png = tmp_path / "labels.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x02\x00")
    clean, issues = validate_cohort_labels("c", str(png), {}, [])
    assert clean.empty and "binary" in issues.iloc[0].message and str(png) in issues.iloc[0].message


def _workbook(path: Path, rows, extra_sheet: bool = False) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for r in rows:
        sheet.append(list(r))
    if extra_sheet:
        book.create_sheet("notes").append(["free text"])
    book.save(path)
    return path


def test_xlsx_is_read_whatever_its_extension(tmp_path):
    rows = [("subject", "idh", "age", "site"), ("A1", "mutant", 40, ROWS[1][3]),
            ("A2", "wildtype", 61.5, ROWS[2][3])]  # fmt: skip
    real = _workbook(tmp_path / "labels.xlsx", rows, extra_sheet=True)
    renamed = tmp_path / "labels.csv"
    renamed.write_bytes(real.read_bytes())
    for p in (real, renamed):
        _expected(load_labels(p))
    clean, issues = validate_cohort_labels("c", str(renamed), {}, ["A1", "A2"])
    assert issues.empty and list(clean.age) == [40.0, 61.5]


def test_xlsx_cells_become_csv_text(tmp_path):
    import datetime

    rows = [("subject", "os_days", "os_event", "scanner"),
            ("A1", 300.0, 1, datetime.datetime(2019, 10, 7)), (None, None, None, None),
            ("A2", 12.25, 0, True)]  # fmt: skip
    df = read_table(_workbook(tmp_path / "t.xlsx", rows))
    assert df.to_dict("index") == {
        2: {"subject": "A1", "os_days": "300", "os_event": "1", "scanner": "2019-10-07"},
        4: {"subject": "A2", "os_days": "12.25", "os_event": "0", "scanner": "TRUE"},
    }


def test_legacy_xls_and_other_zips_are_refused_naming_the_file(tmp_path):
    xls = tmp_path / "labels.csv"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(ConfigError, match=r"labels\.csv is a legacy Excel \.xls"):
        load_labels(xls)
    import zipfile

    odd = tmp_path / "labels.tsv"
    with zipfile.ZipFile(odd, "w") as z:
        z.writestr("content.txt", "subject\tidh\n")
    with pytest.raises(ConfigError, match=r"labels\.tsv is a zip archive but not a readable"):
        load_labels(odd)


def test_repeated_label_column_is_refused(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text("subject\tidh\tnotes\tidh \tnotes\nA1\tmutant\tx\twildtype\ty\n")
    with pytest.raises(ConfigError) as err:
        load_labels(p)
    msg = str(err.value)
    assert str(p) in msg and "'idh' at columns [2, 4]" in msg and "notes" not in msg
    # A mapped source column counts the same way; unused repeats are harmless.
    p.write_text("ID\tIDH\tnotes\tnotes\nA1\tmut\tx\ty\n")
    spec = {"id_column": "ID", "columns": {"idh": "IDH"}, "values": {"idh": {"mut": "mutant"}}}
    assert load_labels(p, spec)["idh"].tolist() == ["mutant"]
    p.write_text("ID\tIDH\tIDH\nA1\tmut\twt\n")
    with pytest.raises(ConfigError, match="'IDH' at columns \\[2, 3\\]"):
        load_labels(p, spec)
    clean, issues = validate_cohort_labels("c", str(p), spec, ["A1"])
    assert clean.empty and "more than once" in issues.iloc[0].message


def test_row_numbers_survive_blank_lines_and_quoted_values(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text('subject,idh,site\nA1,mutant,"Lyon, HCL"\n\n,,\nA2,maybe,x\n')
    df = load_labels(p)
    assert list(df.index) == [2, 5] and df.loc[2, "site"] == "Lyon, HCL"
    _, issues = validate_cohort_labels("c", str(p), {}, ["A1", "A2"])
    assert issues[["row", "column", "value"]].values.tolist() == [[5, "idh", "maybe"]]


def test_too_many_values_in_a_row_names_the_row(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("subject,idh\nA1,mutant\nA2,wildtype,Lyon, HCL\n")
    with pytest.raises(ConfigError, match=r"row 3 has 4 or more values but the header has 2"):
        load_labels(p)
    p.write_text("subject,idh,,\nA1,mutant,,\n")  # unused trailing columns of a spreadsheet
    assert load_labels(p)["idh"].tolist() == ["mutant"]


def test_one_bad_cell_keeps_the_row_and_is_reported(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text(
        "subject\tidh\tage\tmgmt\tos_event\n"
        "A1\tmutant\t=2+3\tmethylated\t1\n"
        "A2\twildtype\t55\tmaybe\t2\n"
        "A3\tmutant\t30\tunmethylated\t0\n"
    )
    clean, issues = validate_cohort_labels("c", str(p), {}, ["A1", "A2", "A3"])
    by_subject = clean.set_index("subject")
    assert list(by_subject.index) == ["A1", "A2", "A3"]
    assert by_subject.loc["A1", "idh"] == "mutant" and np.isnan(by_subject.loc["A1", "age"])
    assert by_subject.loc["A1", "mgmt"] == "methylated" and by_subject.loc["A1", "os_event"] == 1
    assert pd.isna(by_subject.loc["A2", "mgmt"]) and np.isnan(by_subject.loc["A2", "os_event"])
    assert by_subject.loc["A2", "age"] == 55 and by_subject.loc["A3", "age"] == 30
    assert sorted(issues[["row", "column", "value"]].values.tolist()) == [
        [2, "age", "=2+3"], [3, "mgmt", "maybe"], [3, "os_event", "2"]
    ]  # fmt: skip
    assert all("rest of the row is kept" in m for m in issues.message)
    # The intake report sees A1's labels: it is not "images without labels".
    labels = tmp_path / "c_labels.tsv"
    clean.to_csv(labels, sep="\t", index=False)
    sd = tmp_path / "results" / "c" / "sub-A1" / "ses-01" / "anat"
    sd.mkdir(parents=True)
    (sd / "manifest.json").write_text(json.dumps({"sequences": {"t1": "t1.nii.gz"}}))
    rep, _ = intake_report([str(sd / "manifest.json")], {"c": str(labels)})
    a1 = rep[rep.subject == "A1"].iloc[0]
    assert a1.status == "ok" and a1.has_labels and a1.label_idh == "mutant"


def test_missing_or_duplicate_id_still_drops_the_rows(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text("subject\tidh\n\tmutant\nA1\tmutant\nA1\twildtype\nA2\tmutant\n")
    clean, issues = validate_cohort_labels("c", str(p), {}, ["A1", "A2"])
    assert list(clean.subject) == ["A2"]
    assert sorted(issues.row) == [2, 4]
