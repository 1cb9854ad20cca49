# Figures for `snakemake --report report.html` and copies of the dataset's document and validation
# report for it, rebuilt only when their dataset is republished.


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
        provenance=report(
            layout.plot("{dataset}", "provenance", "json"),
            caption="../report/provenance.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "provenance (JSON)"},
        ),
        validation=report(
            layout.plot("{dataset}", "validation", "txt"),
            caption="../report/validation.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "validation report"},
        ),
    log:
        layout.job_log("plots", "{dataset}"),
    wildcard_constraints:
        dataset=PUBLISHED_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        args=job_params(fiducial=config["fiducial_cosmology"]),
        meta=report_metadata,
    shell:
        "python3 -m pbuf_data.job plot_dataset --dataset {wildcards.dataset} --params {params.args:q}"
        " --input {input:q} --output {output.observable:q} {output.correlation:q}"
        " {output.provenance:q} {output.validation:q} --log {log:q}"
