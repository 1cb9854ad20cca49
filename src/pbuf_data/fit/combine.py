"""Combinations of datasets: one joint dataset, and a refusal to count one survey sample twice.

A combination (``combinations:`` in config.yaml) names its member datasets. Before any job
(:func:`check_combination`, at the workflow's parse), every problem of the combination is listed in one message:

- two members measuring one survey sample: the ``samples`` each registry entry names from ``config/samples.yaml``
  (:mod:`pbuf_data.core.samples`), one name shared or two names that overlap there (a later release of the same
  targets, a compilation re-using them), or, automatically, one raw file (same sha256) behind both entries.
  Refused unless the combination lists the pair under ``allow_overlap`` with a reason, which is then recorded in the
  joint dataset's metadata and provenance;
- a member whose entry names no samples: whether it shares one with another member is unknown, so each of its pairs
  needs an ``allow_overlap`` reason;
- a member that supersedes another (registry ``supersedes``, through any chain of releases): always refused, an
  ``allow_overlap`` reason does not lift it (a release and its replacement are never independent);
- a member whose likelihood is a table or a grid (:func:`likelihood_form`: a layout drawing the published
  likelihood, or a ``chi2_table`` file):
  a joint dataset has one Gaussian likelihood, so it is refused; add the members' ``loglike`` values instead
  (joint ln L = sum), e.g. one Cobaya likelihood block per dataset. (:func:`combine` refuses them too, should a
  layout not say so.)

The joint dataset concatenates the members' data vectors in the order given and has a block-diagonal covariance
(the members are independent measurements, which the checks above protect), so its chi2 and ln L are the sums of
the members'. It keeps every per-point column a member carries (SN ``zHD``, ``zHEL``, ``M_B``, the fsigma8
``omega_m_ref`` of the Alcock-Paczynski factor, ids, labels, ...), under the same name, with NaN (numbers) or ""
(text) on the points of members without it; ``member`` and ``kind`` say where each point comes from (supernova
offsets are marginalized per SN member, :mod:`pbuf_data.model.likelihood`).
"""

from __future__ import annotations

import difflib

import numpy as np

from ..core.errors import PbufDataError
from ..core.samples import shared_samples, superseded_by

JOINT_COLUMNS = ("member", "kind")  # the columns a combination adds: which member, of which kind, each point is


def raw_file_pins(entry: dict) -> list[str]:
    """The pinned contents of an entry's raw files, as a refusal names them (two entries reading the same bytes
    measure the same sample, whatever their ``samples`` say)."""
    return [f"raw file sha256 {spec['sha256'][:16]}…" for spec in entry["files"].values() if spec.get("sha256")]


def likelihood_form(entry: dict) -> str:
    """``gaussian``, or the non-Gaussian likelihood an entry's dataset carries: ``likelihood table or grid`` for a
    layout whose figure is the published likelihood itself (``FIGURE = "likelihood"``), ``chi2 table`` for an entry
    with a ``chi2_table`` file."""
    from ..read.formats import layout

    if getattr(layout(entry["format"]), "FIGURE", None) == "likelihood":
        return "likelihood table or grid"
    if "chi2_table" in entry["files"]:
        return "chi2 table"
    return "gaussian"


def _pair_key(a: str, b: str) -> tuple[str, str]:
    return tuple(sorted((a, b)))


def check_combination(name: str, spec: dict, registry: dict, samples: dict | None = None) -> list[dict]:
    """Refuse a combination that could count a sample twice (see the module documentation), listing every
    problem in one message; return the allowed overlaps (pair, samples, reason). ``samples``: the vocabulary
    (default: the project's ``config/samples.yaml``)."""
    if samples is None:
        from ..read.registry import load_samples

        samples = load_samples()
    members = spec["datasets"]
    for member in members:
        if member not in registry:
            close = difflib.get_close_matches(member, list(registry), n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise PbufDataError(f"combination '{name}' names '{member}', which the active registry does not define{hint}",
                                check="combination members")
    if len(set(members)) != len(members):
        raise PbufDataError(f"combination '{name}' names a dataset twice: {members}", check="combination members")
    problems, tables, allowed, lifted = [], [], {}, False
    for item in spec.get("allow_overlap", []):
        pair = _pair_key(*item["pair"])
        if pair[0] == pair[1] or not set(pair) <= set(members):
            raise PbufDataError(f"combination '{name}': allow_overlap pair {list(item['pair'])} is not two of its members",
                                check="allow_overlap")
        allowed[pair] = item["reason"]
    named = [f"'{m}' ({form})" for m in members if (form := likelihood_form(registry[m])) != "gaussian"]
    if named:
        tables.append(f"{' and '.join(named)} {'is' if len(named) == 1 else 'are'} not Gaussian: a combination joins "
                      "Gaussian datasets; add the members' loglike values instead (joint ln L = sum), e.g. one Cobaya "
                      "likelihood block per dataset")
    accepted = []
    for i, a in enumerate(members):
        for b in members[i + 1:]:
            newer, older = (a, b) if b in superseded_by(a, registry) else (b, a)
            if older in superseded_by(newer, registry):
                problems.append(f"'{newer}' supersedes '{older}' (registry 'supersedes'): a release and the one it "
                                "replaces measure the same sample; allow_overlap does not lift this")
                continue
            same, overlapping = shared_samples(registry[a], registry[b], samples)
            same += [pin for pin in raw_file_pins(registry[a]) if pin in raw_file_pins(registry[b])]
            shared = same + [f"{s} ~ {t}" for s, t in overlapping]
            unnamed = [m for m in (a, b) if not registry[m].get("samples")]
            if not shared and not unnamed:
                continue
            pair = _pair_key(a, b)
            if pair in allowed:
                what = shared or [f"unknown: '{m}' names no samples" for m in unnamed]
                accepted.append({"pair": list(pair), "samples": what, "reason": allowed[pair]})
            elif shared:
                lifted = True
                words = [f"both measure {', '.join(same)}"] * bool(same) + [
                    "measure samples that share objects (config/samples.yaml 'overlaps'): "
                    + ", ".join(f"{s} and {t}" for s, t in overlapping)] * bool(overlapping)
                problems.append(f"'{a}' and '{b}' {'; they '.join(words)}")
            else:
                lifted = True
                problems.append(f"{' and '.join(repr(m) for m in unnamed)} name{'s' if len(unnamed) == 1 else ''} no "
                                f"survey samples (registry 'samples', from config/samples.yaml), so whether "
                                f"'{a}' and '{b}' share one is unknown")
    if problems or tables:
        heads = ["would count one sample twice"] * bool(problems) + ["would join a likelihood table or grid"] * bool(tables)
        head = f"combination '{name}' {' and '.join(heads)}"
        tail = "Remove a member" + (", or list the pair under allow_overlap with a reason (not for a release and the "
                                    "one it supersedes)" if lifted else "") + "."
        listed = problems + tables
        body = f": {listed[0]}. " if len(listed) == 1 else ":\n" + "\n".join(f"  - {p}" for p in listed) + "\n"
        raise PbufDataError(head + body + tail, check="sample overlap" if problems else "combination likelihood")
    return accepted


def _joint_columns(name: str, members: list) -> tuple[dict, dict]:
    """Every member's per-point columns over the joint points (NaN or "" where a member lacks one), and for each
    which members carry it."""
    n = [len(ds) for ds in members]
    columns = {
        "member": np.repeat(np.array([ds.name for ds in members]), n),
        "kind": np.repeat(np.array([ds.metadata.get("kind", "") for ds in members]), n),
    }
    described = {"member": "the member dataset of each point", "kind": "the kind of that member (sn, bao, ...)"}
    for key in dict.fromkeys(k for ds in members for k in ds.columns):
        having = [ds.name for ds in members if key in ds.columns]
        kinds = {np.asarray(ds.columns[key]).dtype.kind for ds in members if key in ds.columns}
        if key in JOINT_COLUMNS:
            raise PbufDataError(f"member '{having[0]}' has a column '{key}', which a combination uses for its own "
                                "(the member of each point)", dataset=name, check="combination columns")
        if kinds <= {"U", "S"}:
            fill, dtype, what = "", np.str_, '"" elsewhere'
        elif kinds <= set("fiub"):
            fill, dtype, what = np.nan, np.float64, "NaN elsewhere"
        else:
            raise PbufDataError(f"column '{key}' holds text in one member and numbers in another ({', '.join(having)})",
                                dataset=name, check="combination columns")
        parts = [np.asarray(ds.columns[key]).astype(dtype) if key in ds.columns else np.full(len(ds), fill, dtype=dtype)
                 for ds in members]
        columns[key] = np.concatenate(parts)
        described[key] = f"from {', '.join(having)}" + ("" if len(having) == len(members) else f"; {what}")
    return columns, described


def combine(name: str, members: list, overlaps: list[dict] | None = None):
    """The joint :class:`~pbuf_data.model.dataset.Dataset` of loaded member datasets (see the module documentation)."""
    from scipy.linalg import block_diag

    from ..model.dataset import Dataset

    for ds in members:
        if ds.likelihood().form != "gaussian":
            raise PbufDataError(
                f"member '{ds.name}' has a {ds.likelihood().form} likelihood; a combination joins Gaussian datasets "
                "(combine its likelihood with the others' by adding loglike values instead)",
                dataset=name, check="combination members")
    n = [len(ds) for ds in members]
    columns, described = _joint_columns(name, members)
    return Dataset(
        name=name,
        z=np.concatenate([ds.z for ds in members]),
        observable=np.concatenate([ds.observable for ds in members]),
        uncertainty=np.concatenate([ds.uncertainty for ds in members]),
        covariance=block_diag(*[ds.covariance for ds in members]),
        observable_type=np.concatenate([ds.observable_type for ds in members]),
        columns=columns,
        metadata={
            "name": name,
            "kind": "combination",
            "title": "combination of " + ", ".join(ds.name for ds in members),
            "members": [{"name": ds.name, "kind": ds.metadata.get("kind"), "n_points": len(ds),
                         "title": ds.metadata.get("title"), "citation": ds.metadata.get("citation")} for ds in members],
            "n_points": int(sum(n)),
            "observable_types": sorted({t for ds in members for t in ds.observable_type.tolist()}),
            "covariance": {"source": "block-diagonal: the members' covariances (independent measurements)"},
            "columns": described,
            "allowed_overlaps": overlaps or [],
        },
        provenance={
            "members": {ds.name: ds.provenance for ds in members},
            "allowed_overlaps": overlaps or [],
            "conversions": [{"name": "concatenate", "description": "data vectors and per-point columns concatenated "
                             "in the order listed, covariance block-diagonal", "citation": "",
                             "parameters": {"members": [d.name for d in members]}}],
        },
    )
