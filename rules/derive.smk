# Raw release files -> standard datasets, one job per dataset.
#
# derive_dataset derives a dataset into <tree>/staging (results/<corpus>/staging), validates it and, only if
# validation passed, publishes it (pbuf_data.operate.steps.prepare). Its outputs are the published dataset (archive
# and document), its validation report and a receipt (<tree>/state/<name>.json): any of them is a target
# (`snakemake results/real/derived/bao_desi_dr1.npz`). Publication replaces the published files by atomic
# renames; they are kept() outputs, which Snakemake neither deletes before the job nor after it fails. The
# validation report is written whatever happens and says why a dataset failed. A failed job leaves no
# receipt, so the dataset stays stale (and is retried) until the cause is fixed, its published copy kept.
#
# Where the job runs (in_helper): in a local run without --use-conda, in a process forked by Snakemake's helper
# with the job's threads, like the figures (the work of a BAO table, about 0.1 s, is smaller than the imports of
# a process of its own; a large SN release saves them too); in a conda environment and on a cluster, a process
# of its own, `python3 scripts/derive_dataset.py ...`, the same command line.
# Each job's CPU time and memory are in its audit record (results/<corpus>/logs/audit.jsonl).


rule derive_dataset:
    input:
        unpack(raw_inputs),
    output:
        **published_outputs("{dataset}"),
        receipt=TREE.receipt("{dataset}"),
    log:
        derive=TREE.job_log("derive", "{dataset}"),
        validate=TREE.job_log("validate", "{dataset}"),
        publish=TREE.job_log("publish", "{dataset}"),
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
    run:
        if in_helper(conda_env):
            run_in_snakemake(
                "derive_dataset",
                wildcards,
                params,
                input,
                [output.receipt],
                log,
                threads,
            )
        else:
            shell(
                shell_command(
                    "derive_dataset",
                    wildcards,
                    params,
                    input,
                    [output.receipt],
                    log,
                )
            )
