"""The dataset registry: which raw files make which dataset, pinned and cited.

The registry is YAML validated against ``src/pbuf_data/schemas/registry.schema.yaml``
(defaults filled in), so a typo fails before any job runs, naming the key.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

import yaml

from ..core import layout
from ..core import samples as sample_vocabulary
from ..core.errors import PbufDataError
from . import schema as schema_files  # its SCHEMA_DIR read at call time (a test points it elsewhere)
from .schema import load_schema, validate

RETRIEVE_DIR = layout.RAW_CACHE  # raw files downloaded because raw_dir lacks them
SAMPLES_FILE = sample_vocabulary.SAMPLES_FILE  # the survey samples registry entries name (config/samples.yaml)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML loader that refuses duplicated keys (a duplicated dataset name would silently win)."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (list, dict)):  # a YAML complex key ('? a:'): no registry key is a mapping or a list
            raise PbufDataError(
                f"a key must be a name, not a {type(key).__name__} (line {key_node.start_mark.line + 1})",
                file=str(getattr(loader, "name", "?")),
                line=key_node.start_mark.line + 1,
                check="yaml keys",
            )
        if key in seen:
            raise PbufDataError(
                f"duplicated key '{key}' (line {key_node.start_mark.line + 1})",
                file=str(getattr(loader, "name", "?")),
                line=key_node.start_mark.line + 1,
                check="unique keys",
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


YAML_MAX_BYTES = 4 << 20  # a configuration or registry file larger than 4 MiB is refused unread
YAML_MAX_NODES = 200_000  # values after expanding aliases (a 600-byte alias bomb expands to ~10^9)


def _expanded_size(root) -> int:
    """Number of values ``root`` stands for once every alias is expanded, counted without
    expanding anything (shared nodes are counted once per use; a recursive alias is refused)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
            sizes[key] = min(1 + sum(sizes[id(c)] for c in children), YAML_MAX_NODES + 1)
            continue
        if key in sizes:
            continue
        if key in active:
            raise ValueError("a recursive alias (a value that contains itself)")
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        active.add(key)
        stack.append((node, True))
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _read_small_file(path: Path, what: str) -> str:
    """Text of a regular file of at most YAML_MAX_BYTES (a FIFO or a folder is refused, not waited on)."""
    import errno

    from .rawio import file_kind, read_limited

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PbufDataError(f"{what} is missing", file=str(path), check="exists") from None
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise PbufDataError(f"{what} is a directory, not a file", file=str(path), check="regular file") from None
        raise PbufDataError(f"cannot open the {what}: {exc.strerror}", file=str(path), check="readable") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise PbufDataError(f"{what} is {file_kind(mode)}, not a regular file", file=str(path), check="regular file")
        os.set_blocking(fd, True)
        try:
            data, _ = read_limited(fd, YAML_MAX_BYTES)
        except ValueError:
            raise PbufDataError(f"{what} is larger than {YAML_MAX_BYTES} bytes", file=str(path), check="size limit") from None
        except OSError as exc:
            raise PbufDataError(f"cannot read the {what}: {exc.strerror}", file=str(path), check="readable") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PbufDataError(
            f"{what} is not UTF-8 text (binary data at byte {exc.start})",
            file=str(path),
            line=data[: exc.start].count(b"\n") + 1,
            check="utf-8",
        ) from None


def read_yaml(path: str | Path, what: str = "registry file", *, text: str | None = None):
    """A YAML document read safely: regular file, size-limited, no duplicated keys, aliases bounded.

    The document is composed first and its size with every alias expanded is
    counted (without expanding) before any Python object is built, so an alias
    bomb fails at once with a short message. ``text``: the file's text, already read (by _read_small_file).
    """
    path = Path(path)
    if text is None:
        text = _read_small_file(path, what)
    try:
        loader = _UniqueKeyLoader(text)
        loader.name = str(path)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            try:
                size = _expanded_size(node)
            except ValueError as exc:
                raise PbufDataError(f"{what} holds {exc}", file=str(path), check="yaml size") from None
            if size > YAML_MAX_NODES:
                raise PbufDataError(
                    f"{what} expands to more than {YAML_MAX_NODES} values (anchors and aliases used as an alias bomb?)",
                    file=str(path),
                    check="yaml size",
                )
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PbufDataError(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            file=str(path),
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except RecursionError:
        raise PbufDataError(f"{what} nests too deeply", file=str(path), check="yaml size") from None


def load_registry(*paths: str | Path, cache: str | Path | None = None, samples: str | Path | None = None) -> dict:
    """Read, merge and validate one or more registry files; a name defined twice is an error. ``samples``: the
    vocabulary the entries name their samples from (the project's ``config/samples.yaml``; default: the one
    beside this package's source, :data:`SAMPLES_FILE`).

    With ``cache`` (a folder; the workflow and the CLI pass the project's ``.snakemake/pbuf-data``), the
    result is also kept there, named by the sha256 of the registry files, the schemas and this package's
    code, and read back instead of validating the same bytes with the same code again (1.6 s for 1,000
    datasets, paid by every ``snakemake`` call, including each job's on a cluster).
    """
    texts = [_read_small_file(Path(path), "registry file") for path in paths]  # read once: the key's bytes are parsed
    samples = Path(samples) if samples is not None else SAMPLES_FILE
    samples_text = _read_small_file(samples, "samples file")
    key = _cache_key([*texts, samples_text]) if cache is not None else None
    if key:
        kept = _read_kept(Path(cache), key)
        if kept is not None:
            return kept
    merged = _load_registry(paths, texts, load_samples(samples, text=samples_text))
    if key:
        _keep(Path(cache), key, merged)
    return merged


_CACHE_KEEP = 16  # validated registries kept in a cache folder (the most recently written)


def _code_files() -> tuple | None:
    """The package's source files with their size and modification time (None if one cannot be read)."""
    try:
        return tuple((path, path.stat().st_size, path.stat().st_mtime_ns)
                     for path in sorted(Path(__file__).resolve().parents[1].rglob("*.py")))
    except OSError:
        return None


# The package's sources as this process imported it. A kept registry is used only while they are unchanged:
# a process that imported the package before an edit validates with the code it loaded, not with the edit.
_CODE_AT_IMPORT = _code_files()


def _cache_key(texts: list[str]) -> str | None:
    import hashlib
    import sys
    from importlib.metadata import version

    code = _code_files()
    if code is None or code != _CODE_AT_IMPORT:
        return None  # changed since this process imported it (or unreadable): validated, nothing kept
    digest = hashlib.sha256(b"pbuf-data registry cache 2\0")
    try:  # the validating libraries and interpreter
        libraries = f"{sys.version}|{yaml.__version__}|{yaml.__with_libyaml__}|{version('jsonschema')}"
        digest.update(libraries.encode() + b"\0")
        for path in [*(path for path, _, _ in code), *sorted(schema_files.SCHEMA_DIR.glob("*.yaml"))]:
            digest.update(str(path.relative_to(path.parents[1])).encode() + b"\0" + path.read_bytes())
    except Exception:  # noqa: BLE001 - anything unreadable: validated each time, never a failure here
        return None
    for text in texts:  # the registries' text, in their order (the order of the merged datasets)
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def _read_kept(folder: Path, key: str) -> dict | None:
    """The kept registry, read as a registry file is (a regular file, size-limited), or None."""
    import json

    try:
        kept = json.loads(_read_small_file(folder / f"registry-{key}.json", "kept registry"))
    except (PbufDataError, ValueError, RecursionError, MemoryError):
        return None
    return kept if isinstance(kept, dict) else None


def _keep(folder: Path, key: str, merged: dict) -> None:
    """Write the validated registry (atomically) if JSON holds it exactly; never fails the caller."""
    import json

    from ..core.atomic import write_text

    try:
        text = json.dumps(merged, allow_nan=False)
        if json.loads(text) != merged:
            return  # a value JSON does not keep (a date, a tuple): validated each time instead
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / f"registry-{key}.json", text)
        kept = sorted(folder.glob("registry-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[_CACHE_KEEP:]:
            old.unlink(missing_ok=True)
    except (OSError, ValueError, TypeError, PbufDataError):
        pass


def _load_registry(paths, texts, samples: dict) -> dict:
    """The merged entries, each through the schema, its layout's cross-field rules and the sample vocabulary: every
    problem of every entry in one error."""
    schema = load_schema("registry.schema.yaml")
    merged: dict = {}
    for path, text in zip(paths, texts):
        document = read_yaml(path, text=text)
        if not isinstance(document, dict) or not isinstance(document.get("datasets"), dict):
            raise PbufDataError("a registry is a mapping with a 'datasets' mapping", file=str(path), check="schema")
        for name in document["datasets"]:
            if name in merged:
                raise PbufDataError("dataset defined twice (also in an earlier registry)", dataset=name, file=str(path))
        validate(document, schema, what=f"registry '{path}'")
        merged.update(document["datasets"])
    problems = []
    for name, entry in merged.items():
        try:
            check_entry(name, entry)
        except PbufDataError as exc:
            problems.append(exc)
    sample_problems = sample_vocabulary.check_entries(merged, samples)
    problems += sample_problems
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise PbufDataError(f"{len(problems)} registry errors:\n" + "\n".join(f"  - {p}" for p in problems),
                            check="samples" if len(sample_problems) == len(problems) else "registry")
    return merged


def load_samples(path: str | Path = SAMPLES_FILE, *, text: str | None = None) -> dict:
    """The survey samples of a vocabulary file (default ``config/samples.yaml``), validated against
    ``$defs/sample_vocabulary`` of the registry schema and checked (:func:`pbuf_data.core.samples.checked`)."""
    if text is None:
        text = _read_small_file(Path(path), "samples file")
    return _load_samples(str(path), text)


@functools.lru_cache(maxsize=4)
def _load_samples(path: str, text: str) -> dict:
    document = read_yaml(path, "samples file", text=text)
    schema = load_schema("registry.schema.yaml")
    validate(document, {**schema["$defs"]["sample_vocabulary"], "$defs": schema["$defs"]}, what=f"samples file '{path}'")
    return sample_vocabulary.checked(document["samples"], path)


def check_entry(name: str, entry: dict) -> None:
    """Cross-field rules the schema cannot express: the layout module's (:mod:`pbuf_data.read.formats`)."""
    from .formats import layout

    layout(entry["format"]).check_entry(name, entry)


def resolve_raw_path(raw_dir: str | Path, relative: str, *, dataset: str) -> Path:
    """Path of a raw file, confined to ``raw_dir`` (no absolute paths, '..' or symlinks leading out)."""
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise PbufDataError("raw path must be relative to the raw folder, without '..'", dataset=dataset, file=relative, check="path confinement")
    root = Path(raw_dir)
    candidate = root / rel
    if candidate.exists() or candidate.is_symlink():
        real_root = root.resolve()
        real = candidate.resolve()
        if real_root != real and real_root not in real.parents:
            raise PbufDataError(
                "raw path resolves outside the raw folder (symlink escape)", dataset=dataset, file=relative, check="path confinement"
            )
    return candidate


def active_registry_files(config: dict, raw_dir: str) -> list[str]:
    """Registry files in force: the mock registry for the embedded default (no raw_dir), else the real ones."""
    return [config["mock_registry"]] if not raw_dir else [config["registry"], *config["extra_registries"]]


def raw_location(raw_dir: str, relative: str, *, mock: bool) -> str:
    """Where the workflow reads a raw file: the raw folder (mirror) if it holds it, else the retrieval cache."""
    mirrored = f"{raw_dir}/{relative}"
    if mock or Path(mirrored).exists() or Path(mirrored).is_symlink():
        return mirrored
    return f"{RETRIEVE_DIR}/{relative}"
