# The validation summary: the state of every dataset (published, failed and why, not run).


rule validation_summary:
    input:
        expand(layout.receipt("{dataset}"), dataset=PUBLISHED),
    output:
        json=layout.SUMMARY_JSON,
        text=layout.SUMMARY_TXT,
        html=report(
            layout.SUMMARY_HTML,
            caption="../report/summary.rst",
            category="Overview",
            labels={"figure": "validation summary"},
        ),
    log:
        layout.job_log("validate", "summary"),
    conda:
        "../envs/pbuf.yaml"
    params:
        datasets=PUBLISHED,
    script:
        "../scripts/validation_summary.py"
