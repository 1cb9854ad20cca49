"""Snakemake rule derive_dataset: raw files of one dataset -> derived, validated and published; a receipt."""

from pbuf_data.layout import Tree
from pbuf_data.steps import prepare, run_job

settings = snakemake.params.settings
run_job(
    snakemake,
    prepare,
    Tree(snakemake.params.corpus),
    snakemake.wildcards.dataset,
    settings["entry"],
    dict(snakemake.input.items()),
    {step: snakemake.log[step] for step in ("validate", "publish")},
    snakemake.output[0],
    max_bytes=settings["max_bytes"],
    code=settings["code"],
    expected_points=settings["entry"].get("expected_points"),
    thresholds=settings["thresholds"],
    missing=settings["missing"],
)
