"""Snakemake rule manifest: sha256 of every published output, sha256sum -c compatible."""

from pbuf_data.steps import manifest, run_job

run_job(snakemake, manifest, list(snakemake.input), snakemake.output[0])
