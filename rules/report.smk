# Figures for `snakemake --report report.html`, rebuilt only when their dataset changes.


rule plot_dataset:
    input:
        npz="data/derived/{dataset}.npz",
        json="data/derived/{dataset}.json",
    output:
        observable=report(
            "data/plots/{dataset}_observable.png",
            caption="../report/observable.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "observable vs z"},
        ),
        correlation=report(
            "data/plots/{dataset}_correlation.png",
            caption="../report/correlation.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "correlation matrix"},
        ),
    log:
        "data/logs/plots/{dataset}.log",
    wildcard_constraints:
        dataset=DATASET_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        fiducial=config["fiducial_cosmology"],
        meta=report_metadata,
    script:
        "../scripts/plot_dataset.py"
