# Figures for `snakemake --report report.html` and copies of the dataset's document and validation
# report for it, rebuilt only when their dataset is republished.


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
        provenance=report(
            TREE.plot("{dataset}", "provenance", "json"),
            caption="../report/provenance.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "provenance (JSON)"},
        ),
        validation=report(
            TREE.plot("{dataset}", "validation", "txt"),
            caption="../report/validation.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "validation report"},
        ),
    log:
        TREE.job_log("plots", "{dataset}"),
    wildcard_constraints:
        dataset=PUBLISHED_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        corpus=TREE.corpus,
        fiducial=config["fiducial_cosmology"],
        meta=report_metadata,
    script:
        "../scripts/plot_dataset.py"
