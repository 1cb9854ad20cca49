"""Snakemake rule combine_datasets: a combination of published datasets, validated and published; a receipt."""

from pbuf_data.layout import Tree
from pbuf_data.steps import prepare_combination, run_job

run_job(
    snakemake,
    prepare_combination,
    Tree(snakemake.params.corpus),
    snakemake.wildcards.dataset,
    snakemake.params.spec,
    snakemake.params.overlaps,
    {step: snakemake.log[step] for step in ("validate", "publish")},
    snakemake.output[0],
    thresholds=snakemake.params.thresholds,
)
