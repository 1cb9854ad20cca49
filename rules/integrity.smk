# Integrity: a sha256sum -c compatible manifest of every published output,
# backup archives when it changes, and a verify target that rechecks everything.


rule manifest:
    input:
        expand(layout.receipt("{dataset}"), dataset=PUBLISHED),
        expand(layout.export_receipt("{dataset}"), dataset=PUBLISHED),
        layout.SUMMARY_JSON,
        layout.SUMMARY_TXT,
    output:
        layout.DERIVED_MANIFEST,
    log:
        layout.job_log("integrity", "manifest"),
    conda:
        "../envs/pbuf.yaml"
    shell:
        "python3 -m pbuf_data.job manifest --input {input:q} --output {output:q} --log {log:q}"


rule backup:
    input:
        manifest=layout.DERIVED_MANIFEST,
        config=CONFIG_FILES,
    output:
        layout.BACKUP_RECORD,
    log:
        layout.job_log("backup", "backup"),
    conda:
        "../envs/pbuf.yaml"
    params:
        args=job_params(
            backup_dir=config["backup"]["dir"], keep=config["backup"]["keep"]
        ),
    shell:
        "python3 -m pbuf_data.job backup --params {params.args:q} --input {input.manifest:q} {input.config:q}"
        " --output {output:q} --log {log:q}"


rule verify:
    log:
        layout.job_log("integrity", "verify"),
    conda:
        "../envs/pbuf.yaml"
    # no output: runs whenever it is asked for (snakemake --cores 1 verify), like the cron command `pbuf-data verify`
    params:
        backup_dir=config["backup"]["dir"],
        raw=[] if USE_MOCK else ["--raw-dir", RAW_DIR],
    shell:
        "pbuf-data verify --backup-dir {params.backup_dir:q} {params.raw:q} 2>&1 | tee {log:q}"
