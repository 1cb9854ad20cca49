"""Snakemake rule publish_dataset: a validated dataset is published to data/derived; the receipt is the output."""

from pbuf_data.steps import publish, run_job

run_job(snakemake, publish, snakemake.wildcards.dataset, snakemake.input.npz, snakemake.input.json, snakemake.output[0])
