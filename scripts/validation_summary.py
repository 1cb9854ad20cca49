"""Snakemake rule validation_summary: one table of every dataset's state."""

from pbuf_data.steps import run_job, summarize_validation

run_job(snakemake, summarize_validation, snakemake.params.datasets, snakemake.output.json, snakemake.output.text)
