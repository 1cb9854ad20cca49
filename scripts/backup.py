"""Snakemake rule backup: a new verified archive of derived data, reports, manifests and configuration."""

from pbuf_data.layout import Tree
from pbuf_data.steps import backup, run_job

run_job(
    snakemake,
    backup,
    Tree(snakemake.params.corpus),
    list(snakemake.input.config),
    snakemake.params.backup_dir,
    snakemake.params.keep,
)
