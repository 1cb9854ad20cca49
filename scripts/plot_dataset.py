"""Snakemake rule plot_dataset: the report's figures, provenance and validation report of one published dataset."""

from pbuf_data.layout import Tree
from pbuf_data.steps import plots, run_job

run_job(
    snakemake,
    plots,
    Tree(snakemake.params.corpus),
    snakemake.wildcards.dataset,
    snakemake.params.fiducial,
    snakemake.output.observable,
    snakemake.output.correlation,
    snakemake.output.provenance,
    snakemake.output.validation,
)
