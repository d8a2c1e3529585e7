"""Per-session jobs (all stages): what each per-session rule runs, step by step.

A rule script hands its job's inputs, outputs, settings and log to one `run_*` function here;
the function builds the job's steps from the stage packages and runs them under failure isolation
(`radiogenomics.runner`). This layer sits above the stages, like the workflow: it may import any
stage, and no stage imports it.
"""
