# Fit-ready exports of every published dataset and combination: Cobaya inputs that cobaya-run runs as
# they are (this package's class; Cobaya's own bao.generic or sn.pantheon on the native files written
# beside it), evaluated at the fiducial cosmology, and a SACC file. Rebuilt only when their dataset is republished. The job's output is a receipt;
# the files (<tree>/exports/<name>.*) are replaced one by one, atomically. Written in a process forked by
# Snakemake's helper (run_in_snakemake), also with a cluster executor: sacc and astropy are imported once per run.


localrules:
    export_dataset,


rule export_dataset:
    input:
        TREE.receipt("{dataset}"),
    output:
        TREE.export_receipt("{dataset}"),
    log:
        TREE.job_log("export", "{dataset}"),
    wildcard_constraints:
        dataset=PUBLISHED_NAME,
    params:
        args=job_params(corpus=TREE.corpus, fiducial=config["fiducial_cosmology"]),
    run:
        run_in_snakemake("export_dataset", wildcards, params, input, output, log)


# A combination (config "combinations"): its published members joined, validated and published (outputs as
# derive_dataset's).


rule combine_datasets:
    input:
        lambda w: [TREE.receipt(m) for m in COMBINATIONS[w.dataset]["datasets"]],
    output:
        **published_outputs("{dataset}"),
        receipt=TREE.receipt("{dataset}"),
    log:
        validate=TREE.job_log("validate", "{dataset}"),
        publish=TREE.job_log("publish", "{dataset}"),
    wildcard_constraints:
        dataset=wildcard_choice(COMBINATIONS),
    conda:
        "../envs/pbuf.yaml"
    params:
        args=lambda w: job_params(
            corpus=TREE.corpus,
            spec=COMBINATIONS[w.dataset],
            overlaps=OVERLAPS[w.dataset],
            thresholds=config["validation"],
        ),
    shell:
        run_script("combine_datasets")
        + " --dataset {wildcards.dataset} --params {params.args:q}"
        " --input {input:q} --output {output.receipt:q}"
        " --log {log.validate:q} {log.publish:q}"
