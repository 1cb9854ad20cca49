"""Type-coded BAO tables (MontePython's bao_2014.txt layout) and the r_d rescale factor as an entry option."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pbuf_data.core.errors import PbufDataError
from pbuf_data.read.derive import derive_dataset

from test_cobaya import C, COSMOLOGIES, FlatLCDM
from test_matrix_forms import validate_registry


def test_mp_compilation_reference_values(real):
    ds = real("bao_mp_compilation_2014")
    assert ds.columns["name"].tolist() == ["6DF", "LOWZ", "CMASS", "MGS"]
    assert ds.z.tolist() == [0.106, 0.32, 0.57, 0.15]
    assert ds.observable.tolist() == [0.327, 8.47, 13.77, 4.47]
    assert ds.uncertainty.tolist() == [0.015, 0.17, 0.13, 0.16]
    assert ds.observable_type.tolist() == ["rd_over_DV", "DV_over_rd", "DV_over_rd", "DV_over_rd"]
    assert ds.covariance[0, 0] == pytest.approx(0.000225, rel=1e-15) and np.sqrt(ds.covariance[3, 3]) == 0.16
    assert np.count_nonzero(ds.covariance - np.diag(np.diag(ds.covariance))) == 0


def _montepython_bao_boss(path, cosmo, exclude=()):
    """MontePython's bao_boss likelihood, written here from its description: every line holding a '#' anywhere is
    skipped, rows named in `exclude` too; per row by code 3 D_V/r_s, 4 D_V, 5 D_A/r_s, 6 1/(H r_s) (H in 1/Mpc),
    7 r_s/D_V; chi2 = sum ((theo - data) / error)^2."""
    model = FlatLCDM(**cosmo)
    rs = model.rdrag()
    chi2 = 0.0
    for line in path.read_text().splitlines():
        if "#" in line or not line.strip():
            continue
        name, z, data, error, code = line.split()
        if name in exclude:
            continue
        z, data, error = float(z), float(data), float(error)
        da = model.comoving(z)[0] / (1 + z)
        hubble = model.hubble(z) / C  # 1/Mpc, as CLASS gives it
        dv = (da * da * (1 + z) ** 2 * z / hubble) ** (1 / 3)
        theo = {"3": dv / rs, "4": dv, "5": da / rs, "6": 1 / hubble / rs, "7": rs / dv}[code]
        chi2 += ((theo - data) / error) ** 2
    return chi2


def _ours(ds, cosmo):
    model = FlatLCDM(**cosmo)
    theory = np.empty(len(ds))
    for i, (z, kind) in enumerate(zip(ds.z, ds.observable_type)):
        if kind == "DA_over_rd":  # README: D_M / ((1+z) r_d)
            theory[i] = model.comoving(z)[0] / (1 + z) / model.rdrag()
        elif kind == "theta_BAO_deg":  # README: (180/pi) r_d / D_M
            theory[i] = np.degrees(model.rdrag() / model.comoving(z)[0])
        else:
            theory[i] = model.predict(np.array([z]), kind)[0]
    return ds.chi2(theory)


@pytest.mark.parametrize("exclude", [[], ["CMASS"]])
def test_mp_compilation_chi2_equals_montepython_reader(registry, raw_dir, exclude):
    entry = copy.deepcopy(registry["bao_mp_compilation_2014"])
    entry["options"]["rows"] = {"exclude": exclude}
    entry["expected_points"] = 4 - len(exclude)
    ds = derive_dataset("bao_mp_compilation_2014", entry, raw_dir)
    assert len(ds) == 4 - len(exclude)
    for cosmo in COSMOLOGIES:
        theirs = _montepython_bao_boss(raw_dir / "bao_mp_compilation_2014" / "bao_2014.txt", cosmo, exclude)
        assert _ours(ds, cosmo) == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def _toy(tmp_path, rows, options):
    folder = tmp_path / "raw" / "bao_toy"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bao.txt").write_text("# name z value sigma code\n" + "\n".join(rows) + "\n")
    entry = {"kind": "bao", "format": "bao_type_coded", "title": "toy", "citation": "toy",
             "files": {"table": {"path": "bao_toy/bao.txt", "allow_unpinned": True}}, "options": options}
    validate_registry({"datasets": {"bao_toy": entry}})
    return derive_dataset("bao_toy", entry, tmp_path / "raw")


def test_every_code_and_tab_names_with_spaces_against_montepython(tmp_path):
    """Codes 3 to 7 (4: D_V in Mpc scaled by r_s,fid/r_d, divided by the entry's rs_fid) and an angular theta_BAO
    code, in a TAB-separated file whose names hold spaces; rows chosen with `only`."""
    rows = ["SDSS DR7 MGS\t0.15\t4.47\t0.16\t3", "BOSS CMASS Mpc\t0.57\t2056\t20\t4", "Lya auto\t2.36\t10.8\t0.4\t5",
            "Lya cross\t2.36\t9.0\t0.3\t6", "6dF rescaled\t0.106\t0.327\t0.015\t7", "angular\t0.45\t4.77\t0.17\tT",
            "unused\t0.9\t1.0\t0.1\t3"]
    options = {"table": {"delimiter": "tab", "header": "none"}, "rs_fid": 149.28,
               "rows": {"only": ["SDSS DR7 MGS", "BOSS CMASS Mpc", "Lya auto", "Lya cross", "6dF rescaled", "angular"]},
               "type_codes": {"3": {"observable_type": "DV_over_rd"},
                              "4": {"observable_type": "DV_over_rd", "conversion": "divide_by_rs_fid"},
                              "5": {"observable_type": "DA_over_rd"}, "6": {"observable_type": "DH_over_rd"},
                              "7": {"observable_type": "rd_over_DV"}, "T": {"observable_type": "theta_BAO_deg"}}}
    ds = _toy(tmp_path, rows, options)
    assert ds.columns["name"].tolist()[:2] == ["SDSS DR7 MGS", "BOSS CMASS Mpc"] and len(ds) == 6
    assert ds.observable[1] == pytest.approx(2056 / 149.28, rel=1e-15) and ds.observable_type[5] == "theta_BAO_deg"
    for cosmo in COSMOLOGIES:
        model = FlatLCDM(**cosmo)
        rs = model.rdrag()
        expected = 0.0
        for line in rows[:-1]:
            name, z, data, error, code = line.split("\t")
            z, data, error = float(z), float(data), float(error)
            dm = model.comoving(z)[0]
            dv = np.cbrt(z * dm**2 * C / model.hubble(z))
            theo = {"3": dv / rs, "4": dv * 149.28 / rs, "5": dm / (1 + z) / rs, "6": C / model.hubble(z) / rs,
                    "7": rs / dv, "T": np.degrees(rs / dm)}[code]
            expected += ((theo - data) / error) ** 2
        assert _ours(ds, cosmo) == pytest.approx(expected, rel=1e-9)


def test_bad_rows_and_codes_are_refused(tmp_path):
    options = {"table": {"header": "none"}, "type_codes": {"3": {"observable_type": "DV_over_rd"}}}
    with pytest.raises(PbufDataError, match="line 3, column 5.*type code '7' of row 'B' is not in options.type_codes"):
        _toy(tmp_path, ["A 0.1 3.0 0.1 3", "B 0.2 0.3 0.01 7"], options)
    with pytest.raises(PbufDataError, match=r"options.rows names \['CMAS'\]"):
        _toy(tmp_path, ["A 0.1 3.0 0.1 3"], dict(options, rows={"exclude": ["CMAS"]}))
    with pytest.raises(PbufDataError, match="rs_fid"):
        _toy(tmp_path, ["A 0.1 3.0 0.1 4"], {"type_codes": {"4": {"observable_type": "DV_over_rd",
                                                                  "conversion": "divide_by_rs_fid"}}})
    with pytest.raises(PbufDataError, match="type_codes"):  # the schema: the codes are never assumed
        _toy(tmp_path, ["A 0.1 3.0 0.1 3"], {})


def test_rs_rescale_is_the_releases_own_factor(registry, raw_dir):
    """The 6dFGS r_s(EH98)/D_V = 0.336 +- 0.015 with MontePython's bao_2014 factor 153.94/149.92 gives the
    compilation's 0.327 +- 0.015 (rounded, its comments), where the fixed 1.027369826 is recorded by default."""
    entry = copy.deepcopy(registry["bao_6dfgs"])
    entry["options"]["rs_rescale"] = 153.94 / 149.92
    ds = derive_dataset("bao_6dfgs", entry, raw_dir)
    assert ds.observable[0] == pytest.approx(0.336 * 149.92 / 153.94, rel=1e-15)
    assert round(ds.observable[0], 3) == 0.327 and round(ds.uncertainty[0], 3) == 0.015
    record = [c for c in ds.provenance["conversions"] if c["name"] == "eh98_to_camb_rd"][0]
    assert record["parameters"]["rs_rescale"] == 153.94 / 149.92 and "options.rs_rescale" in record["description"]
    default = derive_dataset("bao_6dfgs", registry["bao_6dfgs"], raw_dir)
    assert default.observable[0] == pytest.approx(0.336 / 1.027369826, rel=1e-15)
