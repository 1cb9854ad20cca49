# What leaves a published dataset (or combination), rebuilt only when it is republished, in one job that reads it
# once (pbuf_data.operate.steps.export):
# - for fitters: Cobaya inputs that cobaya-run runs as they are (this package's class; Cobaya's own bao.generic or
#   sn.pantheon on the native files written beside them), evaluated at the fiducial cosmology, and a SACC file. The
#   files (<tree>/exports/<name>.*) are replaced one by one, atomically; the job's receipt lists their sha256.
# - for `snakemake --report report.html`: the figures, the dataset's validation report and provenance as HTML pages
#   (shown inline by the report) and a copy of its document (JSON, for download).
# A failure of either part fails the job: Snakemake removes its outputs (the receipt and the figures; verify then
# names the figures as of an unfinished job, not as lost), the published dataset is untouched, and the next run makes
# both again. Written in a process forked by Snakemake's helper (run_in_snakemake), also with a cluster executor:
# matplotlib, sacc and astropy are imported once per run, not once per dataset.


localrules:
    export_dataset,


rule export_dataset:
    input:
        TREE.receipt("{dataset}"),
    output:
        receipt=TREE.export_receipt("{dataset}"),
        observable=report(
            TREE.plot("{dataset}", "observable"),
            caption="../report/observable.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "observable vs z"},
        ),
        correlation=report(
            TREE.plot("{dataset}", "correlation"),
            caption="../report/correlation.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "correlation matrix"},
        ),
        validation=report(
            TREE.plot("{dataset}", "validation", "html"),
            caption="../report/validation.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "validation report"},
        ),
        provenance=report(
            TREE.plot("{dataset}", "provenance", "html"),
            caption="../report/provenance.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "provenance"},
        ),
        document=report(
            TREE.plot("{dataset}", "document", "json"),
            caption="../report/document.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "dataset document (JSON)"},
        ),
    log:
        TREE.job_log("export", "{dataset}"),
    wildcard_constraints:
        dataset=PUBLISHED_NAME,
    params:
        args=job_params(corpus=TREE.corpus, fiducial=config["fiducial_cosmology"]),
        meta=report_metadata,
    run:
        # outputs in their order above: receipt, observable, correlation, validation, provenance, document
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
