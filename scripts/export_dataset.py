"""Snakemake rule export_dataset: Cobaya and SACC files of one published dataset (or combination)."""

from pbuf_data.steps import export, run_job

run_job(snakemake, export, snakemake.wildcards.dataset, snakemake.params.folder, snakemake.output[0])
