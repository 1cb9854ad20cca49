"""Snakemake rule generate_mock_file: one raw file of a mock survey, in the real release's format."""

from pbuf_data.steps import mock_file, run_job

run_job(
    snakemake,
    mock_file,
    snakemake.wildcards.dataset,
    snakemake.params.entry,
    snakemake.params.role,
    snakemake.output[0],
    snakemake.params.fiducial,
    snakemake.params.seed,
)
