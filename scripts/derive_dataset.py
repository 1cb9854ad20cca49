"""Snakemake rule derive_dataset: raw files of one dataset -> data/staging/<name>.npz/.json."""

from pbuf_data.steps import derive, run_job

entry = snakemake.params.settings["entry"]
run_job(
    snakemake,
    derive,
    snakemake.wildcards.dataset,
    entry,
    {role: snakemake.input[role] for role in entry["files"]},
    snakemake.output.npz,
    snakemake.output.json,
    max_bytes=snakemake.params.settings["max_bytes"],
    code=snakemake.params.settings["code"],
)
