"""Property-based fuzzing: whatever bytes a raw file or a config holds, the project answers with
its own clear error type (PbufDataError), never an unhandled exception."""

import copy
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbuf_data import PbufDataError
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.schema import load_schema, validate

PROJECT = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# text that looks like the files: numbers, separators, labels, comments, odd values
TOKENS = st.sampled_from(
    ["0.38", "1512.39", "-9", "nan", "inf", "1e308", "-0", "DM_over_rs", "bao_Hz_rs", "DV_over_rs", "R", "l_A", "#",
     "&", "\\\\", "\\cite{x}", "z", "IMF", "mod_ooo", "\t", " ", "  ", "\r", "", "é", "\x00", "1701", "0.0465"]
)
LINES = st.lists(st.lists(TOKENS, max_size=8).map(" ".join), max_size=12).map("\n".join)
CONTENT = st.one_of(LINES, st.text(max_size=300), st.binary(max_size=300))

ROLES = [
    ("sn_pantheon_plus", "table"),
    ("bao_boss_dr12", "mean"),
    ("bao_boss_dr12", "covariance"),
    ("bao_desi_dr1", "mean"),
    ("bao_6dfgs", "table"),
    ("bao_sdss_mgs", "chi2_table"),
    ("cmb_planck2018", "mean"),
    ("cmb_planck2018", "inverse_covariance"),
    ("cc_moresco", "table"),
    ("cc_moresco", "systematics"),
    ("rsd_fsigma8", "table"),
    ("rsd_fsigma8", "reference_table"),
    ("rsd_fsigma8", "sdss"),
]


@pytest.fixture(scope="module")
def unpinned(registry):
    entries = copy.deepcopy(registry)
    for entry in entries.values():
        entry.pop("expected_points", None)
        for spec in entry["files"].values():
            spec.pop("sha256", None)
            spec["allow_unpinned"] = True
    return entries


@pytest.fixture(scope="module")
def fuzz_raw(raw_dir, tmp_path_factory):
    target = tmp_path_factory.mktemp("fuzz") / "raw"
    shutil.copytree(raw_dir, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


@pytest.mark.parametrize("name, role", ROLES, ids=[f"{n}-{r}" for n, r in ROLES])
def test_parsers_answer_any_content_with_a_clear_error(unpinned, fuzz_raw, name, role):
    path = fuzz_raw / unpinned[name]["files"][role]["path"]
    original = path.read_bytes()

    @FUZZ
    @given(content=CONTENT)
    def check(content):
        path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
        try:
            derive_dataset(name, unpinned[name], fuzz_raw)
        except PbufDataError as exc:
            assert f"dataset '{name}'" in str(exc)

    try:
        check()
    finally:
        path.write_bytes(original)


@pytest.mark.parametrize("name, role", [("bao_desi_dr1", "mean"), ("cc_moresco", "table"), ("rsd_fsigma8", "table")])
def test_parsers_survive_mutations_of_the_real_file(unpinned, fuzz_raw, name, role):
    path = fuzz_raw / unpinned[name]["files"][role]["path"]
    original = path.read_bytes()

    @FUZZ
    @given(position=st.integers(0, len(original) - 1), byte=st.integers(0, 255), cut=st.booleans())
    def check(position, byte, cut):
        data = bytearray(original)
        data[position] = byte
        path.write_bytes(bytes(data[:position] if cut else data))
        try:
            derive_dataset(name, unpinned[name], fuzz_raw)
        except PbufDataError:
            pass

    try:
        check()
    finally:
        path.write_bytes(original)


YAMLISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=12,
)


@FUZZ
@given(key=st.sampled_from(["raw_dir", "datasets", "fiducial_cosmology", "max_raw_bytes", "validation", "backup", "health", "extra"]),
       value=YAMLISH)
def test_config_schema_answers_any_value(key, value):
    config = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())
    config[key] = value
    try:
        validate(config, load_schema("config.schema.yaml"), what="config")
    except PbufDataError as exc:
        assert "config" in str(exc)


@FUZZ
@given(path=st.lists(st.sampled_from(["datasets", "bao_boss_dr12", "options", "files", "mean", "labels", "kind", "x"]), min_size=1, max_size=4),
       value=YAMLISH)
def test_registry_schema_answers_any_value(tmp_path_factory, path, value):
    from pbuf_data.read.registry import load_registry

    document = yaml.safe_load((PROJECT / "config" / "registry.yaml").read_text())
    node = document
    for key in path[:-1]:
        if not isinstance(node, dict):
            break
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value
    target = tmp_path_factory.mktemp("reg") / "registry.yaml"
    target.write_text(yaml.safe_dump(document))
    try:
        load_registry(target)
    except PbufDataError:
        pass


def _python_float(token):
    try:
        return float(token)
    except ValueError:
        return None


@FUZZ
@given(token=st.one_of(st.text(max_size=12), st.text("0123456789+-.eE_ \u0661\uff11nainf", max_size=10)))
def test_numbers_are_what_python_reads_restricted_to_ascii_number_characters(token):
    """Independent rule: a token is a number iff float() takes it and it uses only 0-9 + - . e E
    (float() alone also takes Unicode digits, '_' between digits, surrounding blanks, nan and inf)."""
    from pbuf_data.read.textio import RawFile

    raw = RawFile(Path("x"), "x/y.txt", "x", b"")
    expected = _python_float(token) if token and set(token) <= set("0123456789+-.eE") else None
    try:
        value = raw.number(token, 1, 1)
    except PbufDataError as exc:
        assert expected is None, (token, str(exc))
        assert "dataset 'x' (file 'x/y.txt', line 1, column 1" in str(exc)
    else:
        assert value == expected


YAML_TOKENS = st.sampled_from(["a:", "b: 1", "- x", "&a", "*a", "[", "]", "{", "}", ",", "datasets:", "  ", "\n", "'", '"',
                               "!!python/object:os.system", "<<: *a", "? ", "%YAML 1.1", "---", "...", "\t", "\x00", "é"])


@FUZZ
@given(text=st.one_of(st.lists(YAML_TOKENS, max_size=30).map(" ".join), st.text(max_size=200)))
def test_registry_loader_answers_any_text(tmp_path_factory, text):
    from pbuf_data.read.registry import load_registry

    target = tmp_path_factory.mktemp("yaml") / "registry.yaml"
    target.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_registry(target)
    except PbufDataError as exc:
        assert len(str(exc)) < 2500
