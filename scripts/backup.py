"""Snakemake rule backup: a new verified archive of derived data, reports, manifests and configuration."""

from pbuf_data.steps import backup, run_job

run_job(
    snakemake,
    backup,
    snakemake.input.manifest,
    list(snakemake.input.config),
    snakemake.params.backup_dir,
    snakemake.params.keep,
    snakemake.output[0],
)
