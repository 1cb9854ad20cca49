# Embedded default: mock survey files in the real releases' formats.


rule generate_mock_file:
    output:
        f"{layout.MOCK_RAW}/{{dataset}}/{{filename}}",
    log:
        TREE.job_log("mock", "{dataset}/{filename}"),
    wildcard_constraints:
        dataset=wildcard_choice(MOCK_DATASETS),
    conda:
        "../envs/pbuf.yaml"
    params:
        args=lambda w: job_params(
            corpus=TREE.corpus,
            entry=REGISTRY[w.dataset],
            role=mock_role(w),
            seed=REGISTRY[w.dataset]["mock"]["seed"],
            fiducial=config["fiducial_cosmology"],
        ),
    shell:
        "python3 -m pbuf_data.job generate_mock_file --dataset {wildcards.dataset} --params {params.args:q}"
        " --output {output:q} --log {log:q}"
