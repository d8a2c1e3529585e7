"""Rules report_feature_families, report_combat, report_icc, report_ibsi: the Features category."""

from radiogenomics.report import build
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
out = dict(sm.output.items())
rule = sm.rule
if rule == "report_feature_families":
    build.build_feature_families(sm.input.features, out)
elif rule == "report_combat":
    build.build_combat(sm.input.before, sm.input.after, sm.params.sites, out)
elif rule == "report_icc":
    build.build_icc(sm.input.icc, out)
elif rule == "report_ibsi":
    build.build_markdown(sm.input.md, "IBSI conformance", out["html"])
else:
    raise ValueError(f"report_features.py does not serve rule {rule}")
