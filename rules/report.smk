# Figures for `snakemake --report report.html`, the dataset's validation report and provenance as
# HTML pages (shown inline by the report) and a copy of its document (JSON, for download), rebuilt
# only when their dataset is republished. Drawn in a process forked by Snakemake's helper
# (run_in_snakemake), also with a cluster executor: matplotlib is imported once per run, not once per dataset.


localrules:
    plot_dataset,


rule plot_dataset:
    input:
        TREE.receipt("{dataset}"),
    output:
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
        TREE.job_log("plots", "{dataset}"),
    wildcard_constraints:
        dataset=PUBLISHED_NAME,
    params:
        args=job_params(corpus=TREE.corpus, fiducial=config["fiducial_cosmology"]),
        meta=report_metadata,
    run:
        # outputs in their order above: observable, correlation, validation, provenance, document
        run_in_snakemake("plot_dataset", wildcards, params, input, output, log)
