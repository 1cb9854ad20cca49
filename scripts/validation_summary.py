"""Snakemake rule validation_summary: one table of every dataset's state."""

from pbuf_data.layout import Tree
from pbuf_data.steps import run_job, summarize_validation

run_job(snakemake, summarize_validation, Tree(snakemake.params.corpus), snakemake.params.datasets)
