"""Snakemake rule publish_dataset: a validated dataset goes to data/derived."""

from pbuf_data.steps import publish, run_step

run_step(
    snakemake.log[0],
    publish,
    [snakemake.input.npz, snakemake.input.json],
    [snakemake.output.npz, snakemake.output.json],
)
