"""Snakemake rule derive_dataset: raw files of one dataset -> data/staging/<name>.npz/.json."""

from pbuf_data.steps import derive, run_step

run_step(
    snakemake.log[0],
    derive,
    snakemake.wildcards.dataset,
    snakemake.params.settings["entry"],
    {role: snakemake.input[role] for role in snakemake.params.settings["entry"]["files"]},
    snakemake.output.npz,
    snakemake.output.json,
    max_bytes=snakemake.params.settings["max_bytes"],
)
