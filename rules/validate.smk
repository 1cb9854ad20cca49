# The validation summary: the state of every dataset (published, failed and why, not run).


rule validation_summary:
    input:
        expand(layout.receipt("{dataset}"), dataset=PUBLISHED),
    output:
        json=layout.SUMMARY_JSON,
        text=report(
            layout.SUMMARY_TXT,
            caption="../report/summary.rst",
            category="Overview",
            labels={"figure": "validation summary"},
        ),
    log:
        layout.job_log("validate", "summary"),
    conda:
        "../envs/pbuf.yaml"
    params:
        args=job_params(datasets=PUBLISHED),
    shell:
        "python3 -m pbuf_data.job validation_summary --params {params.args:q} --input {input:q}"
        " --output {output.json:q} {output.text:q} --log {log:q}"
