"""Snakemake rule retrieve_raw_file: download one raw file, kept only if it matches its pin."""

from pbuf_data.steps import retrieve, run_job

spec = snakemake.params.spec
run_job(snakemake, retrieve, snakemake.wildcards.dataset, spec["path"], spec["url"], spec["sha256"], snakemake.output[0], spec["mirror_hint"], spec["max_bytes"])
