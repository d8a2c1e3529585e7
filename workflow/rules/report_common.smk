"""Report stage helpers: which stages exist in this workflow, and what the report waits for."""

from snakemake.io import is_flagged, regex_from_filepattern


def producible(path):
    """Some rule of this workflow can make `path` (stages still being added are simply absent)."""
    return any(
        r.is_producer(path) for r in workflow.rules if not r.name.startswith("report_")
    )


def first_subject(pattern):
    """`pattern` for the first subject, to ask whether a per-subject output exists in the DAG."""
    paths = subject_paths(pattern)
    return paths[0] if paths else None


def report_ready(pattern):
    """A per-subject output pattern some rule produces."""
    example = first_subject(pattern)
    return example is not None and producible(example)


def stage_targets(stage):
    """Cohort-level targets a stage registered, so the report waits for that stage."""
    return [p for p in COHORT_TARGETS.get(stage, []) if not p.startswith(REPORT_DIR)]


def reported_elsewhere():
    """Regexes of files other stages already put in the report themselves (not copied twice)."""
    return [
        regex_from_filepattern(str(o))
        for r in workflow.rules
        if not r.name.startswith("report_")
        for o in r.output
        if is_flagged(o, "report")
    ]


def run_inputs(wildcards):
    """Everything of the default run except the report itself: runtimes are read last."""
    return [t for t in all_targets() if not t.startswith(REPORT_DIR)]
