# PBUF data preparation workflow: raw survey files -> standardized, checksummed datasets.
#
#   snakemake --cores 2                                  # embedded default: mock surveys, offline
#   snakemake --cores 2 --config raw_dir=../shared/data/raw   # the real releases of config/registry.yaml
#   snakemake -n                                         # preview what would be (re)processed, and why


import os
import sys

from snakemake.utils import min_version

min_version("9.27")

# The rules and the jobs' scripts run this folder's package (src/), also in a conda
# environment of envs/, where it is not installed: first on the path of this process,
# and through PYTHONPATH (inherited) on the path of every job.
SRC = f"{workflow.basedir}/src"
if SRC not in sys.path:
    sys.path.insert(0, SRC)
_inherited = os.environ.get("PYTHONPATH", "").split(os.pathsep)
os.environ.update(
    PYTHONPATH=os.pathsep.join([SRC, *(p for p in _inherited if p and p != SRC)])
)


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/mock.smk"
include: "rules/retrieve.smk"
include: "rules/derive.smk"
include: "rules/validate.smk"
include: "rules/integrity.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        expand("data/derived/{dataset}.{ext}", dataset=DATASETS, ext=["npz", "json"]),
        "data/validation/summary.txt",
        "data/manifests/derived.sha256",
        "data/logs/backup/last_backup.json",
        expand(
            "data/plots/{dataset}_{figure}.png",
            dataset=DATASETS,
            figure=["observable", "correlation"],
        ),
