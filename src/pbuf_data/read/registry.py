"""The dataset registry: which raw files make which dataset, pinned and cited.

The registry is YAML validated against ``src/pbuf_data/schemas/registry.schema.yaml``
(defaults filled in), so a typo fails before any job runs, naming the key.
"""

from __future__ import annotations

import copy
import functools
import os
import stat
from pathlib import Path

import yaml

from ..core import layout
from ..core import samples as sample_vocabulary
from ..core.errors import PbufDataError, suggest

RETRIEVE_DIR = layout.RAW_CACHE  # raw files downloaded because raw_dir lacks them
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"  # package data (pyproject.toml): read also when installed
SAMPLES_FILE = sample_vocabulary.SAMPLES_FILE  # the survey samples registry entries name (config/samples.yaml)


def _with_defaults(validator_class):
    """jsonschema validator that also fills in ``default`` values (jsonschema FAQ recipe)."""
    import jsonschema

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(prop, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


@functools.cache
def _default_filling_validator():
    """Built on first use: jsonschema is imported only by what validates (the workflow's parse, the CLI),
    not by the jobs that resolve raw paths (every derive job)."""
    import jsonschema

    return _with_defaults(jsonschema.Draft202012Validator)


def load_schema(name: str) -> dict:
    return yaml.safe_load((SCHEMA_DIR / name).read_text())


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error, entry=None) -> str:
    """One schema error in words: what is wrong with the value at its key (``entry``: its dataset's entry)."""
    kind, schema, value = error.validator, error.schema, error.instance
    key = str(error.absolute_path[-1]) if error.absolute_path else ""
    if kind == "additionalProperties":
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in value if k not in allowed) if isinstance(value, dict) else []
        named = ", ".join(f"{k!r}{suggest(k, allowed)}" for k in extra)
        return f"unknown key{'s' if len(extra) > 1 else ''} {named}; allowed: {', '.join(sorted(allowed)) or 'none'}"
    if kind == "required":
        missing = [k for k in error.validator_value if isinstance(value, dict) and k not in value]
        return f"required key {(missing[0] if missing else error.validator_value)!r} is missing"
    if kind == "enum":
        return f"{_short(value)} is not one of {', '.join(map(str, error.validator_value))}{suggest(value, error.validator_value)}"
    if kind == "type":
        return f"{_short(value)} should be of type {error.validator_value}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "above", "exclusiveMaximum": "below"}
        return f"{_short(value)} should be {words[kind]} {error.validator_value}"
    if kind in ("minProperties", "minItems", "minLength"):
        return f"should have at least {error.validator_value} entries" if kind != "minLength" else "should not be empty"
    if kind == "uniqueItems":
        return f"{_short(value)} lists a value twice"
    if key == "path" and kind in ("pattern", "not"):
        parts = str(value).split("/")
        if str(value).startswith("/"):
            return f"path must stay inside the raw folder: an absolute path ({_short(value)}) is not allowed"
        if ".." in parts or "." in parts:
            return f"path must stay inside the raw folder: '..' and '.' are not allowed ({_short(value)})"
        return f"path {_short(value)} may contain only letters, digits, '_', '.', '+', '-' and '/' between names"
    if key == "sha256" and kind == "pattern":
        return f"sha256 {_short(value)} should be 64 lowercase hexadecimal digits (the output of sha256sum)"
    if key == "url" and kind == "pattern":
        return f"url {_short(value)} should start with http://, https:// or ftp://"
    if kind == "pattern":  # names: of datasets, file roles, config 'datasets' entries
        return f"name {_short(value)} should start with a lowercase letter and hold only a-z, 0-9 and '_'"
    if kind == "not" and value == "summary":
        return "'summary' is reserved (<tree>/validation/summary.* is the validation summary)"
    if kind == "const" and key == "kind" and isinstance(entry, dict):
        return f"kind {_short(value)} does not go with format {entry.get('format')!r}, which is of kind {error.validator_value!r}"
    if kind == "const":
        return f"{_short(value)} should be {error.validator_value!r}"
    return error.message if len(error.message) <= 200 else error.message[:197] + "..."


def _leaf_errors(errors):
    """Errors of ``anyOf``/``oneOf``/``propertyNames`` are reported through their most relevant cause."""
    for error in errors:
        if error.context:
            import jsonschema.exceptions

            yield jsonschema.exceptions.best_match(error.context)
        else:
            yield error


def _inline_refs(node, root: dict, depth: int = 0):
    """``node`` with each local ``$ref`` ("#/$defs/...") replaced by a copy of its target (siblings such as
    ``default`` kept beside it). The validator then never resolves a reference: validating a registry of
    1,000 entries takes 2.5x less time. RecursionError for a schema whose references nest over 32 deep."""
    if depth > 32:
        raise RecursionError
    if isinstance(node, list):
        return [_inline_refs(value, root, depth + 1) for value in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        siblings = {key: _inline_refs(value, root, depth + 1) for key, value in node.items() if key != "$ref"}
        resolved = _inline_refs(target, root, depth + 1)
        if set(siblings) <= {"default"} and isinstance(resolved, dict):
            return {**resolved, **siblings}
        return {"allOf": [resolved], **siblings}
    return {key: value if key == "$defs" else _inline_refs(value, root, depth + 1) for key, value in node.items()}


def _flattened(schema: dict) -> dict:
    try:
        return _inline_refs(schema, schema)
    except (RecursionError, KeyError, TypeError):
        return schema  # validated as it is (the validator resolves the references, or reports them)


def validate(document, schema: dict, *, what: str):
    """Validate (filling defaults); on failure raise one error listing every problem, each at its key."""
    errors = sorted(_leaf_errors(_default_filling_validator()(_flattened(schema)).iter_errors(document)),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return document
    # a value outside its enum also contradicts the format's constant: the enum message says it
    keyed = {tuple(e.absolute_path) for e in errors if e.validator != "const"}
    errors = [e for e in errors if e.validator != "const" or tuple(e.absolute_path) not in keyed]
    lines, datasets = [], []
    for error in errors:
        path = list(error.absolute_path)
        key = ".".join(str(p) for p in path) or "(top level)"
        entry = None
        if len(path) >= 2 and path[0] == "datasets" and isinstance(document["datasets"], dict):
            entry = document["datasets"].get(path[1])
            if str(path[1]) not in datasets:
                datasets.append(str(path[1]))
        line = f"at '{key}': {_describe(error, entry)}"
        if line not in lines:
            lines.append(line)
    head = f"{what}: {len(lines)} schema error{'s' if len(lines) > 1 else ''}"
    message = f"{head}: {lines[0]}" if len(lines) == 1 else head + ":\n" + "\n".join(f"  - {line}" for line in lines)
    raise PbufDataError(message, dataset=datasets[0] if len(datasets) == 1 else None, check="schema")


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

    from .textio import file_kind, read_limited

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
        for path in [*(path for path, _, _ in code), *sorted(SCHEMA_DIR.glob("*.yaml"))]:
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
