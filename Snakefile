# PBUF data preparation workflow: raw survey files -> standardized, checksummed datasets.
#
#   snakemake --cores 2                                  # embedded default: mock surveys, offline (the releases
#                                                        # in data/raw instead once it holds any)
#   snakemake --cores 2 --config raw_dir=../shared/data/raw   # the real releases of config/registry.yaml
#   snakemake -n                                         # preview what would be (re)processed, and why


import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.sourcecache import LocalSourceFile
from snakemake.utils import min_version

min_version("9.27")

# The rules and the jobs run this folder's package (src/), also in a conda
# environment of envs/, where it is not installed: first on the path of this process,
# and through PYTHONPATH (inherited) on the path of every job. The folder of this file,
# also when another workflow uses it as a module (workflow.basedir is then that
# workflow's); read from a remote repository, the installed pbuf-data package is used.
_here = workflow.current_basedir
SRC = (
    f"{_here.get_path_or_uri(secret_free=True)}/src"
    if isinstance(_here, LocalSourceFile)
    else None
)
if SRC and SRC not in sys.path:
    sys.path.insert(0, SRC)
_inherited = os.environ.get("PYTHONPATH", "").split(os.pathsep)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [*filter(None, [SRC]), *(p for p in _inherited if p and p != SRC)]
    )
)

from pbuf_data.core.errors import PbufDataError
from pbuf_data.operate.job import job_params
from pbuf_data.read.registry import read_yaml

# Every rule's work is its script, scripts/<rule>.py (pbuf_data/operate/job.py): `python3 SCRIPT ...`, a process that
# imports only its step, not Snakemake. `python3` is this interpreter (its folder first on the jobs' PATH), or
# the environment's with --use-conda (Snakemake puts the environment's folder first).
os.environ.update(
    PATH=os.pathsep.join(
        filter(None, [os.path.dirname(sys.executable), os.environ.get("PATH")])
    )
)


class UserError(WorkflowError):
    """A mistake in the configuration, the registry or the raw folder. Snakemake prints
    it as one block: its message, without the location and frames of this file (they
    point at the check, not at the mistake; the message names the key or file)."""

    __traceback__ = property(lambda self: None, lambda self, value: None)


try:  # refuse duplicated keys, alias bombs, FIFOs... before Snakemake's own YAML loader reads it
    read_yaml("config/config.yaml", "configuration file")
except PbufDataError as exc:
    raise UserError(str(exc)) from None


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/mock.smk"
include: "rules/retrieve.smk"
include: "rules/derive.smk"
include: "rules/validate.smk"
include: "rules/integrity.smk"
include: "rules/export.smk"


onstart:
    start_run()
    without_rate_limiter()


onsuccess:
    finish_run(failed=False)


onerror:
    finish_run(failed=True)


# Every receipt is asked for here, not only through the summary and the manifest: after a failed
# derive those two are rebuilt (settle_tree) and newer than their inputs, and this keeps the dataset stale.
# So is every published file: one deleted by hand is published again.
rule all:
    default_target: True
    input:
        expand(TREE.receipt("{dataset}"), dataset=PUBLISHED),
        expand(list(TREE.published_files("{dataset}").values()), dataset=PUBLISHED),
        TREE.summary_txt,
        TREE.derived_manifest,
        TREE.backup_record,
        expand(TREE.export_receipt("{dataset}"), dataset=PUBLISHED),
        expand(
            TREE.plot("{dataset}", "{figure}"),
            dataset=PUBLISHED,
            figure=["observable", "correlation"],
        ),
