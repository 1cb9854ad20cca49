# PBUF data preparation workflow: raw survey files -> standardized, checksummed datasets.
#
#   snakemake --cores 2                                  # embedded default: mock surveys, offline
#   snakemake --cores 2 --config raw_dir=../shared/data/raw   # the real releases of config/registry.yaml
#   snakemake -n                                         # preview what would be (re)processed, and why


from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from pbuf_data.errors import PbufDataError
from pbuf_data.registry import read_yaml

min_version("9.27")

try:  # refuse duplicated keys, alias bombs, FIFOs... before Snakemake's own YAML loader reads it
    read_yaml("config/config.yaml", "configuration file")
except PbufDataError as exc:
    raise WorkflowError(str(exc)) from None


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/mock.smk"
include: "rules/retrieve.smk"
include: "rules/derive.smk"
include: "rules/validate.smk"
include: "rules/integrity.smk"
include: "rules/report.smk"


onerror:
    rebuild_after_failure()


rule all:
    default_target: True
    input:
        expand(layout.receipt("{dataset}"), dataset=DATASETS),
        layout.SUMMARY_TXT,
        layout.DERIVED_MANIFEST,
        layout.BACKUP_RECORD,
        expand(
            layout.plot("{dataset}", "{figure}"),
            dataset=DATASETS,
            figure=["observable", "correlation"],
        ),
