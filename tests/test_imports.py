"""Import cost of the workflow's jobs: each job imports only what its step needs.

Checked in a fresh interpreter (``sys.modules`` after the import), so that a heavy library pulled in by
a change of imports anywhere below a job's entry point is caught.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("astropy", "scipy", "matplotlib", "pandas", "jsonschema", "snakemake")


def imported_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1])) & set(HEAVY + ("numpy",))


@pytest.mark.parametrize(
    "statement, allowed",
    [
        ("import pbuf_data", set()),  # public names resolved on first use
        ("import pbuf_data.operate.steps", set()),  # what every job's entry point calls
        ("import pbuf_data.operate.job", set()),  # what every rule's script imports (python3 scripts/RULE.py ...): no snakemake
        ("import pbuf_data.core.logs; pbuf_data.core.logs.software_versions()", set()),  # record_job, in every job
        ("import pbuf_data.read.derive, pbuf_data.read.registry", {"numpy"}),  # derive jobs resolve raw paths: no jsonschema
        ("from pbuf_data import PbufDataError", set()),
        ("import pbuf_data.model.cosmology", {"numpy"}),
        ("import pbuf_data.read.mock", {"numpy"}),  # generate_mock_file jobs
        ("import pbuf_data.fit.plots", {"numpy", "matplotlib"}),  # the figures of export_dataset jobs: no astropy, no scipy
        ("import pbuf_data.operate.report_pages", set()),  # the report's HTML pages: standard library only
        ("import pbuf_data.publish.validation", {"numpy"}),  # scipy only once a covariance is checked
    ],
)
def test_job_imports(statement, allowed):
    assert imported_after(statement) <= allowed


def test_public_names_resolve():
    import pbuf_data
    from pbuf_data.core.errors import PbufDataError
    from pbuf_data.model.dataset import Dataset, load_dataset

    assert (pbuf_data.Dataset, pbuf_data.load_dataset, pbuf_data.PbufDataError) == (Dataset, load_dataset, PbufDataError)
    assert set(pbuf_data.__all__) <= set(dir(pbuf_data))
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        pbuf_data.missing  # noqa: B018
