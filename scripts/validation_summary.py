"""Snakemake rule validation_summary: one table of every dataset's state."""

from pbuf_data.steps import run_job, summarize_validation

run_job(
    snakemake,
    summarize_validation,
    snakemake.params.datasets,
    summary_json=snakemake.output.json,
    summary_txt=snakemake.output.text,
    summary_html=snakemake.output.html,
)
