# Figures for `snakemake --report report.html`, the dataset's validation report and provenance as
# HTML pages (shown inline by the report) and a copy of its document (JSON, for download), rebuilt
# only when their dataset is republished.


rule plot_dataset:
    input:
        layout.receipt("{dataset}"),
    output:
        observable=report(
            layout.plot("{dataset}", "observable"),
            caption="../report/observable.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "observable vs z"},
        ),
        correlation=report(
            layout.plot("{dataset}", "correlation"),
            caption="../report/correlation.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "correlation matrix"},
        ),
        validation=report(
            layout.plot("{dataset}", "validation", "html"),
            caption="../report/validation.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "validation report"},
        ),
        provenance=report(
            layout.plot("{dataset}", "provenance", "html"),
            caption="../report/provenance.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "provenance"},
        ),
        document=report(
            layout.plot("{dataset}", "document", "json"),
            caption="../report/document.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "dataset document (JSON)"},
        ),
    log:
        layout.job_log("plots", "{dataset}"),
    wildcard_constraints:
        dataset=PUBLISHED_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        fiducial=config["fiducial_cosmology"],
        meta=report_metadata,
    script:
        "../scripts/plot_dataset.py"
