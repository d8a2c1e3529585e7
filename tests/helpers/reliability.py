"""Reliability tests (all stages): tiny workflow configs, runs, damaged inputs and output scans.

Shared by tests/test_reliability_bad_input.py and tests/test_reliability_resume.py. Two runs are
made once per pytest process and used by both modules (whole per-subject chains are minutes on
2 cores, so no third run):
- the bad-input run: clean demo_a (2 subjects) + demo_b (1 DICOM subject with fake PHI) + cohorts
  of damaged inputs, uninterrupted;
- the resume run: clean demo_a only, SIGKILLed mid-way and restarted.
demo_a's per-subject outputs of the two must be byte-identical: that shows both that bad subjects
do not touch clean ones and that a killed-and-resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import yaml
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from helpers.configs import demo_config

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SEED = 20241125
# One demo plan for every run here, so demo_a subjects are the same images in all of them.
DEMO = {
    "size": "small",
    "small_n_discovery": 2,
    "small_n_validation": 1,
    "second_session_fraction": 0.0,
    "resolution_mm": 2,
}
CLEAN_SUBJECTS = ("A001", "A002")
FAILURES = "results/qc/failures.tsv"
RUN_TIMEOUT_S = 1500
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def demo_cohort(name: str = "demo_a") -> dict:
    """The config entry of a generated demo cohort (demo_a BIDS, demo_b TCIA DICOM)."""
    a = name == "demo_a"
    return {
        "name": name,
        "layout": "bids" if a else "tcia-dicom",
        "path": f"resources/demo/{name}",
        "labels": f"resources/demo/labels/{name}.tsv",
        "role": "discovery" if a else "validation",
        "site": name,
        "demo": True,
        "segmentation": "automated",
        "skull_stripped": False,
    }


def workflow_config(cohorts: list[dict]) -> dict:
    """A tiny config: the demo config with the given cohorts and the small demo plan."""
    return demo_config(seed=SEED, cohorts=cohorts, demo=dict(DEMO))


def write_config(workdir: Path, config: dict) -> Path:
    """Write `config.yaml` into the run directory and return its path."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, configfile: Path, targets: list[str]) -> list[str]:
    """The command line every run here uses (the same one restarts a killed run)."""
    return [
        str(BIN / "snakemake"),
        "--cores",
        "2",
        "--snakefile",
        str(PROJECT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--keep-going",
        "--rerun-incomplete",
        *targets,
    ]


def run_env() -> dict[str, str]:
    """Environment for workflow runs: the venv's binaries first (dcm2niix, snakemake)."""
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    return env


def run_workflow(workdir: Path, config: dict, targets: list[str]) -> subprocess.CompletedProcess:
    """Run the workflow to `targets` in `workdir`; the log lands in `workdir/run.log`."""
    cfg = write_config(workdir, config)
    with open(workdir / "run.log", "ab") as log:
        return subprocess.run(
            snakemake_command(workdir, cfg, targets),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT,
            env=run_env(),
            timeout=RUN_TIMEOUT_S,
        )


def log_tail(workdir: Path, n: int = 4000) -> str:
    """End of a run's log, for assertion messages."""
    p = workdir / "run.log"
    return p.read_text(errors="replace")[-n:] if p.exists() else ""


_RUNS: dict[str, dict] = {}


def bad_input_run(base: Path) -> dict:
    """The uninterrupted run with clean and damaged cohorts: {dir, rc, seconds} (cached)."""
    if "bad" not in _RUNS:
        from radiogenomics.demo import generate_subject

        work = base / "bad_input"
        src = work / "sources"
        for cohort, subject in (("demo_a", "A001"), ("demo_b", "B001")):
            generate_subject(DEMO, SEED, cohort, subject, src)
        cohorts = build_bad_cohorts(src, work / "inputs")
        config = workflow_config([demo_cohort("demo_a"), demo_cohort("demo_b"), *cohorts])
        t0 = time.monotonic()
        res = run_workflow(work, config, [FAILURES, "results/qc/intake_report.tsv"])
        _RUNS["bad"] = {"dir": work, "rc": res.returncode, "seconds": time.monotonic() - t0}
    return _RUNS["bad"]


def first_feature_file(work: Path) -> Path | None:
    """A non-empty per-subject feature file, if any exists yet."""
    for p in (work / "results").glob("*/sub-*/ses-*/features/*.tsv"):
        if p.stat().st_size > 0:
            return p
    return None


def rerun(work: Path, cmd: list[str], note: str) -> subprocess.CompletedProcess:
    """Run `cmd` to the end, appending its output to the run log; output kept for checks."""
    res = subprocess.run(
        cmd, capture_output=True, text=True, cwd=PROJECT, env=run_env(), timeout=RUN_TIMEOUT_S
    )
    with open(work / "run.log", "a") as log:
        log.write(f"\n===== {note} (exit {res.returncode}) =====\n{res.stdout}{res.stderr}")
    res.stdout += res.stderr
    return res


def resume_run(base: Path, kill_deadline_s: float = 900) -> dict:
    """Clean demo_a run SIGKILLed (process group) at its first feature file, then restarted."""
    if "resume" in _RUNS:
        return _RUNS["resume"]
    work = base / "resume"
    cfg = write_config(work, workflow_config([demo_cohort("demo_a")]))
    cmd = snakemake_command(work, cfg, [FAILURES])
    t0 = time.monotonic()
    with open(work / "run.log", "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT,
            env=run_env(),
            start_new_session=True,  # its own process group: the kill takes every job with it
        )
        try:
            while first_feature_file(work) is None and proc.poll() is None:
                if time.monotonic() - t0 > kill_deadline_s:
                    break
                time.sleep(0.2)
        finally:
            ended_alone = proc.poll() is not None
            if not ended_alone:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = {
        "dir": work,
        "ended_before_kill": ended_alone,
        "failures_at_kill": (work / FAILURES).exists(),
        "features_at_kill": sorted(
            str(p.relative_to(work)) for p in (work / "results").rglob("features/*.tsv")
        ),
        "killed_after_s": time.monotonic() - t0,
    }
    first = rerun(work, cmd, "killed; rerunning the same command")
    out["first_rerun_rc"] = first.returncode
    out["stale_lock"] = "cannot be locked" in first.stdout
    out["rc"] = first.returncode
    if out["stale_lock"]:
        # Snakemake's directory lock does not notice that its owner died (SIGKILL): --unlock
        # clears it, then the same command resumes.
        rerun(work, [*cmd, "--unlock"], "stale lock: --unlock")
        out["rc"] = rerun(work, cmd, "rerunning the same command").returncode
    out["seconds"] = time.monotonic() - t0
    _RUNS["resume"] = out
    return out


def result_files(root: Path, suffixes=(".tsv", ".nii.gz", ".json")) -> dict[str, str]:
    """sha256 of every file under `root/results` with one of `suffixes`, by relative path."""
    out = {}
    results = root / "results"
    for p in sorted(results.rglob("*")):
        if p.is_file() and p.name.endswith(suffixes):
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def differing(a: dict[str, str], b: dict[str, str], prefix: str = "") -> list[str]:
    """Paths (under `prefix`) missing from one side or with different content."""
    keys = {k for k in a.keys() | b.keys() if k.startswith(prefix)}
    return sorted(k for k in keys if a.get(k) != b.get(k))


def temp_leftovers(root: Path) -> list[str]:
    """Partial writes: temporary files of the atomic writers left under `root/results`."""
    return sorted(
        str(p.relative_to(root))
        for p in (root / "results").rglob("*")
        if ".tmp" in p.name or p.name.endswith((".part", ".partial"))
    )


# --- damaged inputs ------------------------------------------------------------------------


def corrupt_nifti(src: Path, dst: Path) -> None:
    """A valid gzip stream whose content is not a NIfTI (a zeroed header, random voxels)."""
    raw = bytearray(gzip.decompress(src.read_bytes()))
    raw[:348] = bytes(348)  # sizeof_hdr = 0 and no magic: not NIfTI-1/2, not Analyze
    dst.write_bytes(gzip.compress(bytes(raw), mtime=0))


def truncated_gzip(src: Path, dst: Path) -> None:
    """The first 40 % of a .nii.gz: the header reads, the voxel data ends early."""
    raw = src.read_bytes()
    dst.write_bytes(raw[: int(len(raw) * 0.4)])


def shifted_fov(src: Path, dst: Path, shift_mm: float = 120.0) -> None:
    """Same voxels, field of view moved `shift_mm` along x (another session or patient)."""
    img = nib.load(str(src))
    aff = img.affine.copy()
    aff[0, 3] += shift_mm
    out = nib.Nifti1Image(np.asanyarray(img.dataobj), aff, img.header)
    out.set_qform(aff, code=1)
    out.set_sform(aff, code=1)
    nib.save(out, str(dst))


def nan_map(src: Path, dst: Path) -> None:
    """A float map with every voxel NaN on the source grid."""
    img = nib.load(str(src))
    data = np.full(img.shape, np.nan, dtype=np.float32)
    hdr = img.header.copy()
    hdr.set_data_dtype(np.float32)
    out = nib.Nifti1Image(data, img.affine, hdr)
    out.header.set_slope_inter(1.0, 0.0)
    nib.save(out, str(dst))


def label_image(src: Path, dst: Path, values: np.ndarray | None = None, extra: int = 0) -> None:
    """A uint8 label image on `src`'s grid: all zero, or `values` with `extra` in a corner cube."""
    img = nib.load(str(src))
    data = np.zeros(img.shape, np.uint8) if values is None else values.astype(np.uint8)
    if extra:
        c = [s // 2 for s in data.shape]
        data[c[0] : c[0] + 2, c[1] : c[1] + 2, c[2] : c[2] + 2] = extra
    hdr = img.header.copy()
    hdr.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(data, img.affine, hdr)
    out.header.set_slope_inter(1.0, 0.0)
    nib.save(out, str(dst))


def replace_series_with_sr(series_dir: Path) -> Path:
    """Swap an image series for one Basic Text SR object (same description, no pixel data)."""
    files = sorted(series_dir.glob("*"))
    ref = pydicom.dcmread(files[0], stop_before_pixels=True)
    for f in files:
        f.unlink()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(series_dir), "sop"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    for key in ("PatientID", "StudyInstanceUID", "StudyDate", "SeriesDescription", "SeriesNumber"):
        setattr(ds, key, getattr(ref, key))
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[str(series_dir), "series"])
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    out = series_dir / "sr_report.dcm"
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out


def write_nifti_table(root: Path, rows: list[tuple[str, str, Path]]) -> Path:
    """`root/table.tsv` of a nifti-table cohort: (subject, sequence, path) rows, session 01."""
    df = pd.DataFrame(
        [{"subject": s, "session": "01", "sequence": q, "path": str(p)} for s, q, p in rows]
    )
    root.mkdir(parents=True, exist_ok=True)
    df.to_csv(root / "table.tsv", sep="\t", index=False)
    return root / "table.tsv"


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy a folder (inputs are damaged on the copy, never on the generated original)."""
    shutil.copytree(src, dst)
    return dst


BIDS = {
    "t1": "anat/sub-A001_ses-01_T1w.nii.gz",
    "t1ce": "anat/sub-A001_ses-01_ce-gadolinium_T1w.nii.gz",
    "t2": "anat/sub-A001_ses-01_T2w.nii.gz",
    "flair": "anat/sub-A001_ses-01_FLAIR.nii.gz",
    "adc": "dwi/sub-A001_ses-01_ADC.nii.gz",
    "rcbv": "perf/sub-A001_ses-01_rCBV.nii.gz",
}


def build_bad_cohorts(src: Path, root: Path) -> list[dict]:
    """Damaged copies of demo subjects as nifti-table / tcia-dicom cohorts; their config entries."""
    a = src / "demo_a" / "sub-A001" / "ses-01"
    good = {seq: a / rel for seq, rel in BIDS.items()}

    nifti = root / "bad_nifti"
    nifti.mkdir(parents=True)
    rows = []
    for subject in ("C01", "C02", "C03", "C04", "N01"):
        for seq, path in good.items():
            dst = nifti / f"{subject}_{seq}.nii.gz"
            if (subject, seq) == ("C01", "t1ce"):
                corrupt_nifti(path, dst)
            elif (subject, seq) == ("C02", "t2"):
                truncated_gzip(path, dst)
            elif (subject, seq) == ("C03", "flair"):
                continue  # missing sequence
            elif (subject, seq) == ("C04", "flair"):
                shifted_fov(path, dst)
            elif (subject, seq) == ("N01", "adc"):
                nan_map(path, dst)
            else:
                shutil.copyfile(path, dst)
            rows.append((subject, seq, dst.name))
    write_nifti_table(nifti, rows)
    # N01 twice (duplicate ID), Z99 has labels but no images.
    (nifti / "labels.tsv").write_text(
        "subject\tidh\nC01\tmutant\nN01\twildtype\nC02\twildtype\nN01\tmutant\nZ99\tmutant\n"
    )

    seg = root / "bad_seg"
    seg.mkdir(parents=True)
    rows = []
    for subject, extra in (("L01", 0), ("L02", 7)):
        for seq, path in good.items():
            shutil.copyfile(path, seg / f"{subject}_{seq}.nii.gz")
            rows.append((subject, seq, f"{subject}_{seq}.nii.gz"))
        values = None
        if extra:  # a real-looking lesion plus a cube of an undefined label value
            values = np.zeros(nib.load(str(good["t1ce"])).shape, np.uint8)
            values[40:50, 50:60, 40:50] = 2
        label_image(good["t1ce"], seg / f"{subject}_labels.nii.gz", values, extra)
        rows.append((subject, "labels", f"{subject}_labels.nii.gz"))
    write_nifti_table(seg, rows)

    dicom = root / "bad_dicom"
    copy_tree(src / "demo_b" / "B001", dicom / "D01")
    flair = [d for d in (dicom / "D01" / "01").iterdir() if "flair" in d.name]
    assert len(flair) == 1
    replace_series_with_sr(flair[0])

    common = {"role": "validation", "skull_stripped": False}
    return [
        {
            "name": "bad_nifti",
            "layout": "nifti-table",
            "table": str(nifti / "table.tsv"),
            "labels": str(nifti / "labels.tsv"),
            **common,
        },
        {
            "name": "bad_seg",
            "layout": "nifti-table",
            "table": str(seg / "table.tsv"),
            "segmentation": "provided",
            "label_convention": "pipeline",
            **common,
        },
        {"name": "bad_dicom", "layout": "tcia-dicom", "path": str(dicom), **common},
    ]


# --- PHI scan ------------------------------------------------------------------------------


def png_text(raw: bytes) -> bytes:
    """Text of a PNG's tEXt/zTXt/iTXt chunks (zTXt/iTXt decompressed where compressed)."""
    out, i = [], 8
    while i + 8 <= len(raw):
        length = int.from_bytes(raw[i : i + 4], "big")
        kind, body = raw[i + 4 : i + 8], raw[i + 8 : i + 8 + length]
        if kind == b"tEXt":
            out.append(body)
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            out.append(key + b"\0" + zlib.decompress(rest[1:]))
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            flag, text = rest[0], rest[2:].split(b"\0", 2)[-1]
            out.append(key + b"\0" + (zlib.decompress(text) if flag else text))
        i += 12 + length
    return b"\n".join(out)


def scannable_bytes(path: Path) -> bytes:
    """A file's bytes as PHI could hide in them: gunzipped, plus PNG text chunks."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    if path.suffix == ".png":
        raw += png_text(raw)
    return raw


def phi_hits(root: Path, strings: list[str]) -> list[tuple[str, str]]:
    """(file, string) for every PHI string found in any file under `root/results`."""
    needles = [(s, s.encode().lower()) for s in strings if s.strip()]
    hits = []
    for p in sorted((root / "results").rglob("*")):
        if not p.is_file():
            continue
        data = scannable_bytes(p).lower()
        hits += [(str(p.relative_to(root)), s) for s, b in needles if b in data]
    return hits
