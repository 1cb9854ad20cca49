# Raw release files -> standard datasets, one job per dataset.
#
# derive_dataset derives a dataset into <tree>/staging (results/<corpus>/staging), validates it and, only if
# validation passed, publishes it (pbuf_data.steps.prepare). Its declared output
# is a receipt (<tree>/state/<name>.json), never a published file, so Snakemake's
# deletion of a job's outputs (before it runs, after it fails) cannot remove
# published data; publication replaces them by atomic renames. The validation
# report is written whatever happens, and is not an output either. A failed
# job leaves no receipt, so the dataset stays stale (and is retried) until the
# cause is fixed.


rule derive_dataset:
    input:
        unpack(raw_inputs),
    output:
        TREE.receipt("{dataset}"),
    log:
        derive=TREE.job_log("derive", "{dataset}"),
        validate=TREE.job_log("validate", "{dataset}"),
        publish=TREE.job_log("publish", "{dataset}"),
    benchmark:
        TREE.benchmark("derive", "{dataset}")
    wildcard_constraints:
        dataset=DATASET_NAME,
    conda:
        "../envs/pbuf.yaml"
    threads: lambda wildcards, input: threads_for(raw_size(input))
    params:
        # Snakemake compares (and shows in its reason) their digest; a dry run names the changed option
        args=lambda w: job_params(
            corpus=TREE.corpus, settings=dataset_settings(w), digest=True
        ),
    shell:
        run_script("derive_dataset")
        + " --dataset {wildcards.dataset} --params {params.args:q}"
        " --input {input:q} --output {output:q}"
        " --log {log.derive:q} {log.validate:q} {log.publish:q}"
