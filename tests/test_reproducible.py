"""A dataset's files are the same bytes whichever process derives them: nothing depends on the order of a set
or a dict of strings, which Python's hash randomization (PYTHONHASHSEED) changes from process to process (a
Slurm job derives a dataset in another process than a local run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import PROJECT

DERIVE_ALL = """
import hashlib, json, sys, tempfile
from pathlib import Path
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.registry import load_registry
registry, raw = load_registry(Path(sys.argv[1])), Path(sys.argv[2])
out, folder = {}, Path(tempfile.mkdtemp())
for name, entry in registry.items():
    ds = derive_dataset(name, entry, raw)
    ds.save(folder / f"{name}.npz", folder / f"{name}.json")
    out[name] = [hashlib.sha256((folder / f"{name}.{ext}").read_bytes()).hexdigest() for ext in ("npz", "json")]
print(json.dumps(out))
"""


def _digests(seed: str, raw_dir) -> dict:
    env = dict(os.environ, PYTHONHASHSEED=seed, SOURCE_DATE_EPOCH="1704067200")
    proc = subprocess.run([sys.executable, "-c", DERIVE_ALL, str(PROJECT / "config" / "registry.yaml"), str(raw_dir)],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_every_real_dataset_is_the_same_bytes_under_two_hash_seeds(raw_dir):
    first, second = _digests("1", raw_dir), _digests("2", raw_dir)
    assert first.keys() == second.keys() and len(first) >= 20
    assert {name for name in first if first[name] != second[name]} == set()
