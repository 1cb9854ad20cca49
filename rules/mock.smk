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
        corpus=TREE.corpus,
        entry=lambda w: REGISTRY[w.dataset],
        role=mock_role,
        seed=lambda w: REGISTRY[w.dataset]["mock"]["seed"],
        fiducial=config["fiducial_cosmology"],
    script:
        "../scripts/generate_mock.py"
