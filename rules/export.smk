# Fit-ready exports of every published dataset and combination: the files Cobaya's own likelihood
# classes read (bao.generic, sn.pantheon) with their YAML blocks, this package's Cobaya class block,
# and a SACC file. Rebuilt only when their dataset is republished. The job's output is a receipt;
# the files (<tree>/exports/<name>.*) are replaced one by one, atomically.


rule export_dataset:
    input:
        TREE.receipt("{dataset}"),
    output:
        TREE.export_receipt("{dataset}"),
    log:
        TREE.job_log("export", "{dataset}"),
    wildcard_constraints:
        dataset=PUBLISHED_NAME,
    conda:
        "../envs/pbuf.yaml"
    params:
        corpus=TREE.corpus,
    script:
        "../scripts/export_dataset.py"


# A combination (config "combinations"): its published members joined, validated and published.


rule combine_datasets:
    input:
        lambda w: [TREE.receipt(m) for m in COMBINATIONS[w.dataset]["datasets"]],
    output:
        TREE.receipt("{dataset}"),
    log:
        validate=TREE.job_log("validate", "{dataset}"),
        publish=TREE.job_log("publish", "{dataset}"),
    wildcard_constraints:
        dataset=wildcard_choice(COMBINATIONS),
    conda:
        "../envs/pbuf.yaml"
    params:
        corpus=TREE.corpus,
        spec=lambda w: COMBINATIONS[w.dataset],
        overlaps=lambda w: OVERLAPS[w.dataset],
        thresholds=config["validation"],
    script:
        "../scripts/combine_datasets.py"
