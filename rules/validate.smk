# The validation summary: the state of every dataset (published, failed and why, not run).


rule validation_summary:
    input:
        expand(TREE.receipt("{dataset}"), dataset=PUBLISHED),
    output:
        json=kept(TREE.summary_json),
        text=kept(TREE.summary_txt),
        html=report(
            TREE.summary_html,
            caption="../report/summary.rst",
            category="Overview",
            labels={"figure": "validation summary"},
        ),
    log:
        TREE.job_log("validate", "summary"),
    conda:
        "../envs/pbuf.yaml"
    params:
        args=job_params(corpus=TREE.corpus, datasets=PUBLISHED),
    shell:
        run_script("validation_summary")
        + " --params {params.args:q} --input {input:q}"
        " --output {output.json:q} {output.text:q} {output.html:q} --log {log:q}"
