"""The JSON schemas of the configuration and the registries (package data, ``src/pbuf_data/schemas``) and the
validation of a document against one: defaults filled in, every problem listed at its key, in words."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

from ..core.errors import PbufDataError, suggest

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"  # package data (pyproject.toml): read also when installed


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
