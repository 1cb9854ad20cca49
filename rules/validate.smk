# Validation reports: a gate between derivation and publication.


rule validate_dataset:
    input:
        npz="data/staging/{dataset}.npz",
        json="data/staging/{dataset}.json",
    output:
        report="data/validation/{dataset}.json",
        text=report(
            "data/validation/{dataset}.txt",
            caption="../report/validation.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "validation report"},
        ),
    log:
        "data/logs/validate/{dataset}.log",
    wildcard_constraints:
        dataset=DATASET_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        settings=dataset_settings,
    script:
        "../scripts/validate_dataset.py"


rule validation_summary:
    input:
        expand("data/validation/{dataset}.json", dataset=DATASETS),
    output:
        json="data/validation/summary.json",
        text=report(
            "data/validation/summary.txt",
            caption="../report/summary.rst",
            category="Overview",
            labels={"figure": "validation summary"},
        ),
    log:
        "data/logs/validate/summary.log",
    conda:
        "../envs/pbuf.yaml"
    script:
        "../scripts/validation_summary.py"
