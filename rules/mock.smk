# Embedded default: mock survey files in the real releases' formats. Written in a process forked by
# Snakemake's helper (run_in_snakemake), one file per job: most take less time than the imports a job
# process would need.


localrules:
    generate_mock_file,


rule generate_mock_file:
    output:
        f"{layout.MOCK_RAW}/{{dataset}}/{{filename}}",
    log:
        TREE.job_log("mock", "{dataset}/{filename}"),
    wildcard_constraints:
        dataset=MOCK_FOLDER,
    params:
        args=lambda w: job_params(
            corpus=TREE.corpus,
            entry=REGISTRY[w.dataset],
            role=mock_role(w),
            seed=REGISTRY[w.dataset]["mock"]["seed"],
            fiducial=config["fiducial_cosmology"],
        ),
    run:
        run_in_snakemake("generate_mock_file", wildcards, params, input, output, log)
