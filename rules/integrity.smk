# Integrity: a sha256sum -c compatible manifest of every published output,
# backup archives when it changes, and a verify target that rechecks everything.


rule manifest:
    input:
        expand(TREE.receipt("{dataset}"), dataset=PUBLISHED),
        expand(TREE.export_receipt("{dataset}"), dataset=PUBLISHED),
        TREE.summary_json,
        TREE.summary_txt,
    output:
        TREE.derived_manifest,
    log:
        TREE.job_log("integrity", "manifest"),
    conda:
        "../envs/pbuf.yaml"
    params:
        args=job_params(corpus=TREE.corpus),
    shell:
        "python3 -m pbuf_data.job manifest --params {params.args:q} --input {input:q} --output {output:q} --log {log:q}"


rule backup:
    input:
        manifest=TREE.derived_manifest,
        config=CONFIG_FILES,
    output:
        TREE.backup_record,
    log:
        TREE.job_log("backup", "backup"),
    conda:
        "../envs/pbuf.yaml"
    params:
        args=job_params(
            corpus=TREE.corpus,
            backup_dir=config["backup"]["dir"],
            keep=config["backup"]["keep"],
        ),
    shell:
        "python3 -m pbuf_data.job backup --params {params.args:q} --input {input.manifest:q} {input.config:q}"
        " --output {output:q} --log {log:q}"


rule verify:
    log:
        TREE.job_log("integrity", "verify"),
    conda:
        "../envs/pbuf.yaml"
    # no output: runs whenever it is asked for (snakemake --cores 1 verify), like the cron command `pbuf-data verify`
    params:
        backup_dir=config["backup"]["dir"],
        raw=[] if USE_MOCK else ["--raw-dir", RAW_DIR],
        corpus=TREE.corpus,
    shell:
        "pbuf-data verify --corpus {params.corpus:q} --backup-dir {params.backup_dir:q} {params.raw:q} 2>&1 | tee {log:q}"
