"""Snakemake rule manifest: sha256 of every published output, sha256sum -c compatible."""

from pbuf_data.steps import manifest, run_step

run_step(snakemake.log[0], manifest, list(snakemake.input), snakemake.output[0])
