"""The jobs' entry point (``python3 -m pbuf_data.job RULE ...``): its command line as the rules write it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pbuf_data.job import RULES, _raw_roles, job_params, parse

PROJECT = Path(__file__).resolve().parents[1]


def test_a_command_line_as_a_rule_writes_it_gives_the_job_back():
    params = {"settings": {"entry": {"files": {"mean": {"path": "d/m it's.txt"}}}, "max_bytes": 10, "missing": []}}
    command = (f"derive_dataset --dataset d --params {shlex.quote(job_params(**params))} --input 'raw dir/d/m it'\"'\"'s.txt'"
               " --output data/state/d.json --log a.log b.log c.log")
    job = parse(shlex.split(command))
    assert (job.rule, job.dataset, job.params) == ("derive_dataset", "d", params)
    assert job.input == ["raw dir/d/m it's.txt"] and job.output == ["data/state/d.json"]
    assert job.log == ["a.log", "b.log", "c.log"]


def test_params_are_stable_json():
    assert job_params(b=1, a={"y": 2, "x": [1, None]}) == '{"a":{"x":[1,null],"y":2},"b":1}'


def test_raw_inputs_are_matched_to_their_registry_roles():
    entry = {"files": {"mean": {"path": "bao/mean.txt"}, "cov": {"path": "bao/cov.txt"}}}
    paths = ["data/raw_cache/bao/cov.txt", "/mirror/bao/mean.txt"]  # order and folders as Snakemake passes them
    assert _raw_roles("bao", entry, paths) == {"cov": "data/raw_cache/bao/cov.txt", "mean": "/mirror/bao/mean.txt"}
    with pytest.raises(SystemExit, match=r"dataset 'bao'.*file '/mirror/bao/xmean.txt'.*matches 0 registry files"):
        _raw_roles("bao", entry, ["/mirror/bao/xmean.txt"])  # a longer name ending like a registry path is not it


def test_every_rule_runs_a_job_the_entry_point_knows():
    commands = set()
    for smk in sorted((PROJECT / "rules").glob("*.smk")):
        commands |= set(re.findall(r"python3 -m pbuf_data\.job (\w+)", smk.read_text()))
    assert commands == set(RULES)
