"""The survey samples: one vocabulary (``config/samples.yaml``) that every registry entry names its samples from.

A sample is a set of objects a release measures (BOSS DR12 CMASS galaxies, DESI DR1 quasars, the Pantheon+
supernovae, ...), with its survey, tracer and redshift range. ``overlaps`` says which samples hold some of the
same objects (a later data release of the same targets, a compilation re-using them); the relation is symmetric.
:func:`pbuf_data.read.registry.load_samples` reads the file and checks it against ``$defs/sample_vocabulary`` of the
registry schema, then here; each registry entry's ``samples`` and ``supersedes`` are checked here when the registry
is loaded (:func:`pbuf_data.read.registry.load_registry`), so a misspelt name fails before any job, naming the entry and
the nearest known name. :mod:`pbuf_data.fit.combine` asks :func:`shared_samples` whether two entries may be combined.
"""

from __future__ import annotations

from pathlib import Path

from .errors import PbufDataError, suggest

SAMPLES_FILE = Path(__file__).resolve().parents[3] / "config" / "samples.yaml"


def checked(samples: dict, path: str | Path = SAMPLES_FILE) -> dict:
    """The samples of a vocabulary file already validated against its schema block, with the checks the schema
    cannot express (z_min <= z_max, ``overlaps`` naming known samples) and ``overlaps`` made symmetric (each
    sample then lists every sample it shares objects with)."""
    problems = []
    for name, sample in samples.items():
        if sample["z_min"] > sample["z_max"]:
            problems.append(f"'{name}': z_min {sample['z_min']} is above z_max {sample['z_max']}")
        for other in sample["overlaps"]:
            if other == name:
                problems.append(f"'{name}' overlaps itself")
            elif other not in samples:
                problems.append(f"'{name}' overlaps '{other}', which is not a sample{suggest(other, samples)}")
    if problems:
        raise PbufDataError("; ".join(problems), file=str(path), check="samples")
    for name, sample in samples.items():
        for other in sample["overlaps"]:
            if name not in samples[other]["overlaps"]:
                samples[other]["overlaps"].append(name)
    return samples


def check_entries(registry: dict, samples: dict) -> list[PbufDataError]:
    """The problems of the entries' ``samples`` (names of the vocabulary) and ``supersedes`` (names of the
    registry, not the entry itself, no cycle), one error per entry, each naming it and the nearest known name."""
    problems = []
    for name, entry in registry.items():
        lines = [f"sample '{s}' is not in {SAMPLES_FILE.parent.name}/{SAMPLES_FILE.name}{suggest(s, samples)}"
                 for s in entry.get("samples", []) if s not in samples]
        for old in entry.get("supersedes", []):
            if old == name:
                lines.append("supersedes itself")
            elif old not in registry:
                lines.append(f"supersedes '{old}', which the registry does not define{suggest(old, registry)}")
        chain = superseded_by(name, registry)
        if name in chain:
            lines.append(f"supersedes a dataset that supersedes it (a cycle through {', '.join(sorted(chain))})")
        if lines:
            problems.append(PbufDataError("; ".join(lines), dataset=name, check="samples"))
    return problems


def superseded_by(name: str, registry: dict) -> set[str]:
    """Every dataset ``name`` replaces, directly or through a chain of ``supersedes``."""
    found, todo = set(), list(registry.get(name, {}).get("supersedes", []))
    while todo:
        old = todo.pop()
        if old not in found:
            found.add(old)
            todo.extend(registry.get(old, {}).get("supersedes", []))
    return found


def shared_samples(a: dict, b: dict, samples: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """What two registry entries both measure: the samples they both name, and the pairs (a's, b's) of different
    samples that overlap (share objects); both empty when they measure disjoint samples."""
    mine, theirs = list(a.get("samples", [])), list(b.get("samples", []))
    same = [s for s in mine if s in theirs]
    overlapping = [(s, t) for s in mine for t in theirs if s != t and t in samples.get(s, {}).get("overlaps", ())]
    return same, overlapping
