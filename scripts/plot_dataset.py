"""Snakemake rule plot_dataset: the report's figures of one published dataset."""

from pbuf_data.steps import plots, run_job

run_job(
    snakemake,
    plots,
    snakemake.input.npz,
    snakemake.input.json,
    snakemake.params.fiducial,
    snakemake.output.observable,
    snakemake.output.correlation,
)
