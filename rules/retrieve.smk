# Raw files missing from the raw folder are downloaded from their registry URL,
# kept only if their sha256 equals the pin (data/raw_cache mirrors raw_dir's layout).


localrules:
    retrieve_raw_file,


rule retrieve_raw_file:
    output:
        f"{layout.RAW_CACHE}/{{dataset}}/{{filename}}",
    log:
        TREE.job_log("retrieve", "{dataset}/{filename}"),
    wildcard_constraints:
        dataset=RETRIEVED_FOLDER,
    conda:
        "../envs/pbuf.yaml"
    params:
        args=lambda w: job_params(corpus=TREE.corpus, spec=retrieval_spec(w)),
    shell:
        run_script("retrieve_raw_file")
        + " --dataset {wildcards.dataset} --params {params.args:q}"
        " --output {output:q} --log {log:q}"
