"""Snakemake rule manifest: sha256 of every published output, sha256sum -c compatible."""

from pbuf_data.layout import Tree
from pbuf_data.steps import manifest, run_job

run_job(snakemake, manifest, Tree(snakemake.params.corpus))
