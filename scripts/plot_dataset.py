"""Snakemake rule plot_dataset: the report's figures, validation and provenance pages of one published dataset."""

from pbuf_data.layout import Tree
from pbuf_data.steps import plots, run_job

run_job(
    snakemake,
    plots,
    Tree(snakemake.params.corpus),
    snakemake.wildcards.dataset,
    fiducial=snakemake.params.fiducial,
    observable_png=snakemake.output.observable,
    correlation_png=snakemake.output.correlation,
    validation_html=snakemake.output.validation,
    provenance_html=snakemake.output.provenance,
    document_json=snakemake.output.document,
)
