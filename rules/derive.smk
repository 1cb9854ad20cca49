# Raw release files -> standard datasets.
#
# derive_dataset writes to data/staging; publish_dataset publishes a dataset
# only after its validation passed. Its declared output is a receipt, not the
# published files, so Snakemake never deletes a published dataset (before a
# job or after a failure); publication replaces them by atomic renames
# (pbuf_data.dataset.publish). Because publish_dataset shares the raw inputs
# and settings of the derivation, the published copy stays stale (and is
# retried) until the cause of a failure is fixed.


rule derive_dataset:
    input:
        unpack(raw_inputs),
    output:
        npz=layout.staged("{dataset}", "npz"),
        json=layout.staged("{dataset}", "json"),
    log:
        layout.job_log("derive", "{dataset}"),
    benchmark:
        layout.benchmark("derive", "{dataset}")
    wildcard_constraints:
        dataset=DATASET_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        settings=dataset_settings,
    script:
        "../scripts/derive_dataset.py"


rule publish_dataset:
    input:
        unpack(publish_inputs),
    output:
        layout.receipt("{dataset}"),
    log:
        layout.job_log("publish", "{dataset}"),
    wildcard_constraints:
        dataset=DATASET_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        settings=dataset_settings,
    script:
        "../scripts/publish_dataset.py"
