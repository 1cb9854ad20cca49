"""Snakemake rule validate_dataset: checks a staged dataset; fails on any error-level check."""

from pbuf_data.steps import run_job, validate

run_job(
    snakemake,
    validate,
    snakemake.input.npz,
    snakemake.input.json,
    snakemake.output.report,
    snakemake.output.text,
    expected_points=snakemake.params.settings["entry"].get("expected_points"),
    thresholds=snakemake.params.settings["thresholds"],
)
