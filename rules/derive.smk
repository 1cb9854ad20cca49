# Raw release files -> standard datasets.
#
# derive_dataset writes to data/staging; publish_dataset copies a dataset to
# data/derived only after its validation passed. A failing derivation or
# validation therefore never touches the published copy, and because
# publish_dataset shares the raw inputs and settings of the derivation, the
# published copy stays stale (and is retried) until the cause is fixed.


rule derive_dataset:
    input:
        unpack(raw_inputs),
    output:
        npz="data/staging/{dataset}.npz",
        json="data/staging/{dataset}.json",
    log:
        "data/logs/derive/{dataset}.log",
    benchmark:
        "data/logs/benchmarks/derive/{dataset}.tsv"
    wildcard_constraints:
        dataset=DATASET_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        settings=dataset_settings,
    script:
        "../scripts/derive_dataset.py"


rule publish_dataset:
    input:
        unpack(publish_inputs),
    output:
        npz="data/derived/{dataset}.npz",
        json=report(
            "data/derived/{dataset}.json",
            caption="../report/provenance.rst",
            category="Datasets",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "provenance (JSON)"},
        ),
    log:
        "data/logs/publish/{dataset}.log",
    wildcard_constraints:
        dataset=DATASET_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        settings=dataset_settings,
    script:
        "../scripts/publish_dataset.py"
