"""Combinations of datasets: one joint dataset, and a refusal to count one survey sample twice.

A combination (``combinations:`` in config.yaml) names its member datasets. Before any job, every pair of members
is checked for a shared survey sample: the ``samples`` each registry entry declares (e.g. ``boss_dr12_galaxies``,
``desi_dr1``) and, automatically, each raw file's sha256 (two entries built from the same file measure the same
thing). A shared sample refuses the combination, naming both datasets and the sample, unless the combination lists
the pair under ``allow_overlap`` with a reason; the reason is then recorded in the joint dataset's provenance.

The joint dataset concatenates the members' data vectors in the order given and has a block-diagonal covariance
(the members are independent measurements, which is what the overlap check protects); its per-point columns
``member`` and ``kind`` say where each point comes from (supernova offsets are marginalized over the SN rows only).
"""

from __future__ import annotations

import difflib

import numpy as np

from .errors import PbufDataError


def samples_of(entry: dict) -> dict[str, str]:
    """sample -> where it comes from, for one registry entry: declared samples and raw-file contents."""
    found = {sample: "declared in the registry" for sample in entry.get("samples", [])}
    for spec in entry["files"].values():
        if spec.get("sha256"):
            found[f"raw file sha256 {spec['sha256'][:16]}…"] = f"raw file {spec['path']}"
    return found


def _pair_key(a: str, b: str) -> tuple[str, str]:
    return tuple(sorted((a, b)))


def check_combination(name: str, spec: dict, registry: dict) -> list[dict]:
    """Refuse unknown members or an undeclared overlap; return the allowed overlaps (pair, samples, reason)."""
    members = spec["datasets"]
    for member in members:
        if member not in registry:
            close = difflib.get_close_matches(member, list(registry), n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise PbufDataError(f"combination '{name}' names '{member}', which the active registry does not define{hint}",
                                check="combination members")
    if len(set(members)) != len(members):
        raise PbufDataError(f"combination '{name}' names a dataset twice: {members}", check="combination members")
    allowed = {}
    for item in spec.get("allow_overlap", []):
        pair = _pair_key(*item["pair"])
        if not set(pair) <= set(members):
            raise PbufDataError(f"combination '{name}': allow_overlap pair {list(pair)} is not two of its members",
                                check="allow_overlap")
        allowed[pair] = item["reason"]
    accepted = []
    for i, a in enumerate(members):
        samples_a = samples_of(registry[a])
        for b in members[i + 1:]:
            shared = sorted(set(samples_a) & set(samples_of(registry[b])))
            if not shared:
                continue
            pair = _pair_key(a, b)
            if pair not in allowed:
                raise PbufDataError(
                    f"combination '{name}' would count one sample twice: '{a}' and '{b}' both measure "
                    f"{', '.join(shared)}. Remove one, or list the pair under allow_overlap with a reason.",
                    check="sample overlap")
            accepted.append({"pair": list(pair), "samples": shared, "reason": allowed[pair]})
    return accepted


def combine(name: str, members: list, overlaps: list[dict] | None = None):
    """The joint :class:`~pbuf_data.dataset.Dataset` of loaded member datasets (see the module documentation)."""
    from scipy.linalg import block_diag

    from .dataset import Dataset

    for ds in members:
        if ds.likelihood().form != "gaussian":
            raise PbufDataError(
                f"member '{ds.name}' has a {ds.likelihood().form} likelihood; a combination joins Gaussian datasets "
                "(combine its likelihood with the others' by adding loglike values instead)",
                dataset=name, check="combination members")
    n = [len(ds) for ds in members]
    return Dataset(
        name=name,
        z=np.concatenate([ds.z for ds in members]),
        observable=np.concatenate([ds.observable for ds in members]),
        uncertainty=np.concatenate([ds.uncertainty for ds in members]),
        covariance=block_diag(*[ds.covariance for ds in members]),
        observable_type=np.concatenate([ds.observable_type for ds in members]),
        columns={
            "member": np.repeat(np.array([ds.name for ds in members]), n),
            "kind": np.repeat(np.array([ds.metadata.get("kind", "") for ds in members]), n),
        },
        metadata={
            "name": name,
            "kind": "combination",
            "title": "combination of " + ", ".join(ds.name for ds in members),
            "members": [{"name": ds.name, "kind": ds.metadata.get("kind"), "n_points": len(ds),
                         "title": ds.metadata.get("title"), "citation": ds.metadata.get("citation")} for ds in members],
            "n_points": int(sum(n)),
            "observable_types": sorted({t for ds in members for t in ds.observable_type.tolist()}),
            "covariance": {"source": "block-diagonal: the members' covariances (independent measurements)"},
            "allowed_overlaps": overlaps or [],
        },
        provenance={
            "members": {ds.name: ds.provenance for ds in members},
            "allowed_overlaps": overlaps or [],
            "conversions": [{"name": "concatenate", "description": "data vectors concatenated in the order listed, "
                             "covariance block-diagonal", "citation": "", "parameters": {"members": [d.name for d in members]}}],
        },
    )
