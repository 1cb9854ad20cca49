# Integrity: a sha256sum -c compatible manifest of every published output,
# backup archives when it changes, and a verify target that rechecks everything.


rule manifest:
    input:
        expand(TREE.receipt("{dataset}"), dataset=PUBLISHED),
        expand(TREE.export_receipt("{dataset}"), dataset=PUBLISHED),
        TREE.summary_json,
        TREE.summary_txt,
    output:
        kept(TREE.derived_manifest),
    log:
        TREE.job_log("integrity", "manifest"),
    conda:
        "../envs/pbuf.yaml"
    params:
        args=job_params(corpus=TREE.corpus),
    shell:
        run_script("manifest")
        + " --params {params.args:q} --input {input:q} --output {output:q} --log {log:q}"


rule backup:
    input:
        manifest=TREE.derived_manifest,
        config=CONFIG_FILES,
    output:
        kept(TREE.backup_record),
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
        run_script("backup")
        + " --params {params.args:q} --input {input.manifest:q} {input.config:q}"
        " --output {output:q} --log {log:q}"


rule verify:
    log:
        TREE.job_log("integrity", "verify"),
    conda:
        "../envs/pbuf.yaml"
    # no output: runs whenever it is asked for (snakemake --cores 1 verify), like the cron command `pbuf-data verify`
    params:
        args=job_params(
            corpus=TREE.corpus,
            backup_dir=config["backup"]["dir"],
            raw_dir=None if USE_MOCK else RAW_DIR,
        ),
    shell:
        run_script("verify") + " --params {params.args:q} 2>&1 | tee {log:q}"
