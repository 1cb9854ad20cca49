"""Snakemake rule validation_summary: one table of every dataset's verdict."""

from pbuf_data.steps import run_job, summarize_validation

run_job(snakemake, summarize_validation, list(snakemake.input), snakemake.output.json, snakemake.output.text)
