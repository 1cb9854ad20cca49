"""Snakemake rule plot_dataset: the report's figures and provenance of one published dataset."""

from pbuf_data.steps import plots, run_job

run_job(
    snakemake,
    plots,
    snakemake.wildcards.dataset,
    snakemake.params.fiducial,
    snakemake.output.observable,
    snakemake.output.correlation,
    snakemake.output.provenance,
)
