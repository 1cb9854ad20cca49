"""Snakemake rule validation_summary: one table of every dataset's verdict."""

from pbuf_data.steps import run_step, summarize_validation

run_step(snakemake.log[0], summarize_validation, list(snakemake.input), snakemake.output.json, snakemake.output.text)
