"""Snakemake rule export_dataset: Cobaya and SACC files of one published dataset (or combination)."""

from pbuf_data.layout import Tree
from pbuf_data.steps import export, run_job

run_job(snakemake, export, Tree(snakemake.params.corpus), snakemake.wildcards.dataset, snakemake.output[0])
