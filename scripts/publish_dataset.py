"""Snakemake rule publish_dataset: a validated dataset goes to data/derived."""

from pbuf_data.steps import publish, run_job

run_job(snakemake, publish, [snakemake.input.npz, snakemake.input.json], [snakemake.output.npz, snakemake.output.json])
