"""The active project: its folder, configuration, corpus and result tree, raw folder, registries and datasets.

Built once from the configuration and used by every part that needs to know
what a run works on: the workflow's rules (``rules/common.smk``), the CLI,
``status``, certification and the Python API. ``--config`` overrides of a run
(``raw_dir``, ``corpus``, ...) have their counterpart in :meth:`Project.open`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core import layout
from ..core.errors import PbufDataError
from ..core.locate import find_project

CONFIG = "config/config.yaml"
SAMPLES = "config/samples.yaml"  # the survey samples the registry entries name


def read_config(root: Path, *, lenient: bool = False) -> dict:
    """``config/config.yaml`` validated against its schema (defaults filled); ``lenient`` reads it without the
    schema and never raises (verify and restore must work even when the configuration is broken)."""
    from ..read.registry import read_yaml
    from ..read.schema import load_schema, validate

    path = root / CONFIG
    if lenient:
        try:
            config = read_yaml(path, "configuration file")
        except PbufDataError:
            return {}
        return config if isinstance(config, dict) else {}
    return validate(read_yaml(path, "configuration file"), load_schema("config.schema.yaml"), what=f"config '{path}'")


SPELLING = {"boolean": "true or false", "integer": "a whole number such as 2000000", "number": "a number such as 0.5",
            "object": "a mapping such as {key: value}", "array": "a list such as [a, b]"}


def typed_values(config: dict, schema: dict, prefix: str = "") -> dict:
    """``--config`` values as the schema types them, in place: Snakemake hands ``retrieve=false`` and the numbers
    of ``max_raw_bytes={cmb: 2000000}`` over as strings, ``raw_dir=`` as None. A string is read as YAML where the
    schema wants a boolean, a number, an object or a list, kept when that gives the wanted type (otherwise the
    schema's message names the key); an empty value of a string key is the empty string."""
    import yaml

    wanted = {"boolean": (bool,), "integer": (int,), "number": (int, float), "object": (dict,), "array": (list,)}
    for key, spec in (schema.get("properties") or {}).items():
        if key not in config or not isinstance(spec, dict):
            continue
        value, kind = config[key], spec.get("type")
        if value is None and kind == "string":
            config[key] = ""
        elif isinstance(value, str) and isinstance(kind, str) and kind in wanted:
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = None
            if not isinstance(parsed, wanted[kind]) or (kind != "boolean" and isinstance(parsed, bool)):
                raise PbufDataError(f"config '{prefix}{key}': {value!r} is not {kind}: write {SPELLING[kind]} "
                                    f"(e.g. --config {prefix.split('.')[0] or key}=...)", check="schema")
            config[key] = parsed
        if isinstance(config[key], dict) and kind == "object":
            typed_values(config[key], spec, f"{prefix}{key}.")
    return config


class Project:
    """What a run of this project works on, from its (validated) configuration."""

    def __init__(self, root: str | Path, config: dict):
        self.root = Path(root)
        raw = (config.get("raw_dir") or "").rstrip("/")
        recorded = read_built_from(self.root, config["corpus"]) if not raw and config.get("corpus") else None
        if recorded and not recorded.get("mock") and recorded.get("raw_dir"):
            raw = str(recorded["raw_dir"])  # a tree named without a raw folder: the one it was built from
            config = dict(config, raw_dir=raw)
        # still no raw folder: the releases in data/raw if it holds any (corpus 'mock', or a tree recorded as built
        # from the mock surveys, asks for the embedded default)
        self.default_raw = (not raw and config.get("corpus") != layout.MOCK_CORPUS
                            and not (recorded and recorded.get("mock")) and layout.holds_releases(self.root))
        if self.default_raw:
            raw = layout.RAW
        self.config = config
        self.use_mock = not raw
        self.raw_dir = layout.MOCK_RAW if self.use_mock else raw
        corpus = config.get("corpus") or layout.default_corpus(raw)
        try:
            self.tree = layout.Tree(corpus)
        except ValueError as exc:
            raise PbufDataError(str(exc), file=str(self.root / CONFIG), check="corpus") from None
        self.corpus = corpus
        self._registry = None

    @classmethod
    def open(cls, root: str | Path | None = None, *, raw_dir: str | Path | None = None, corpus: str | None = None,
             lenient: bool = False) -> "Project":
        """The project at or above ``root`` (default: the current folder), with the overrides of a run:
        ``raw_dir`` as ``--config raw_dir=...`` (the real registry), ``corpus`` as ``--config corpus=...``."""
        root = find_project(root)
        config = dict(read_config(root, lenient=lenient))
        if raw_dir:
            config["raw_dir"] = str(Path(raw_dir).resolve())
        if corpus:
            config["corpus"] = corpus
        project = cls(root, config)
        if not project.use_mock:  # a relative raw folder (data/raw, a config value) is the project's, as Snakemake
            project.raw_dir = str(root / project.raw_dir)  # reads it, also when the command runs in a sub-folder
        return project

    @classmethod
    def for_tree(cls, root: str | Path | None, corpus: str, *, lenient: bool = False) -> "Project":
        """The project as the result tree of ``corpus`` was built: its recorded raw folder (or mock surveys)."""
        root = find_project(root)
        config = dict(read_config(root, lenient=lenient), corpus=corpus)
        if read_built_from(root, corpus):
            config["raw_dir"] = ""  # the tree's record decides (raw folder or mock surveys), not the configuration
        return cls(root, config)

    @property
    def registry_files(self) -> list[str]:
        """Registry files in force: the mock registry for the embedded default, else the real ones."""
        from ..read.registry import active_registry_files

        return active_registry_files(self.config, "" if self.use_mock else self.raw_dir)

    @property
    def cache_dir(self) -> Path:
        """Validated registries (:func:`pbuf_data.read.registry.load_registry`), beside Snakemake's own state."""
        return self.root / ".snakemake" / "pbuf-data"

    @property
    def registry(self) -> dict:
        """The active registry, validated (raises PbufDataError naming every error)."""
        if self._registry is None:
            from ..read.registry import load_registry

            self._registry = load_registry(*[self.root / f for f in self.registry_files], cache=self.cache_dir,
                                           samples=self.root / SAMPLES)
        return self._registry

    @property
    def samples(self) -> dict:
        """The survey samples of this project (``config/samples.yaml``), validated."""
        from ..read.registry import load_samples

        return load_samples(self.root / SAMPLES)

    @property
    def datasets(self) -> list[str]:
        """The datasets a run derives: config ``datasets``, else every dataset of the active registry."""
        return list(self.config.get("datasets") or self.registry)

    @property
    def combinations(self) -> dict:
        return dict(self.config.get("combinations") or {})

    def overrides(self) -> dict:
        """The ``--config`` values a Snakemake run of this project needs (raw folder and corpus)."""
        values = {}
        if not self.use_mock:
            values["raw_dir"] = self.raw_dir
        if self.config.get("corpus"):
            values["corpus"] = self.config["corpus"]
        return values

    def describe(self) -> str:
        """One line a person reads: which corpus, which result tree, which raw files."""
        raw = "mock surveys generated in " + layout.MOCK_RAW if self.use_mock else f"raw folder {self.raw_dir}"
        if self.default_raw:
            raw += " (the default raw folder: it holds releases; --config corpus=mock runs the mock surveys)"
        return f"corpus '{self.corpus}': results in {self.tree.base}/, {raw}"

    def built_from(self) -> dict:
        """What this project's settings would build the tree from (the record :meth:`record_tree` writes)."""
        return {"corpus": self.corpus, "mock": self.use_mock, "registry": self.registry_files,
                "raw_dir": layout.MOCK_RAW if self.use_mock else str((self.root / self.raw_dir).resolve())}

    def check_tree(self) -> None:
        """Refuse to write into a tree built from another registry or corpus (mock surveys versus a raw folder,
        another main registry): PbufDataError naming both. A tree without a record yet is accepted."""
        recorded = read_built_from(self.root, self.corpus)
        if not recorded:
            return
        wanted = self.built_from()
        if recorded.get("mock") != wanted["mock"] or (recorded.get("registry") or [None])[0] != wanted["registry"][0]:
            def what(rec):
                source = "mock surveys" if rec.get("mock") else f"raw folder {rec.get('raw_dir')}"
                return f"registry {', '.join(rec.get('registry') or ['?'])} and {source}"

            hint = "pass --raw-dir PATH" if not recorded.get("mock") else "leave raw_dir empty, or pass another --corpus"
            raise PbufDataError(
                f"{self.tree.base}/ was built from {what(recorded)}; this would use {what(wanted)}: refusing to mix "
                f"them ({hint}; the trees present: {', '.join(t.corpus for t in layout.trees(self.root))})",
                file=str(self.root / self.tree.built_from),
                check="tree matches corpus",
            )

    def record_tree(self) -> None:
        """Write (or update: a moved raw folder, another extra registry) the tree's record of what it is built from."""
        from ..core.atomic import write_text

        self.check_tree()
        wanted = self.built_from()
        if read_built_from(self.root, self.corpus) != wanted:
            write_text(self.root / self.tree.built_from, json.dumps(wanted, indent=2) + "\n")

    def missing_tree_hint(self) -> str:
        """Said when this corpus has no results yet although others have."""
        others = [t.corpus for t in layout.trees(self.root) if t != self.tree]
        if not others:
            return ""
        return f"; results exist for corpus {', '.join(repr(c) for c in others)}: pass --corpus NAME"


def read_built_from(root: Path, corpus: str) -> dict | None:
    """A tree's record of the registry and raw folder it was built from; None without one (or unreadable)."""
    try:
        record = json.loads((Path(root) / layout.Tree(corpus).built_from).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
