"""Exports of a derived dataset for the fitting codes of the field.

Cobaya (native files its own likelihood classes read, and a YAML block that points at them):

* Gaussian vectors of BAO distances, H*r_d and f*sigma8 (BAO, BAO+fsigma8, RSD): the measurements file
  (``z value observable`` per line, Cobaya's names) and covariance file of Cobaya's ``bao.generic``, with
  ``rs_rescale: 1`` (the values are already in units of r_d);
* supernovae: the CosmoMC/Cobaya "lcparam" layout read by Cobaya's ``sn.pantheon`` class — a ``.dataset`` file,
  the light-curve table (zcmb = the dataset's z, zhel, mb = the published magnitude or distance modulus,
  dmb = the square root of the covariance diagonal) and ``mag_covmat`` (the covariance minus its diagonal, first
  line N), with ``pecz = 0``, so that Cobaya's total covariance diag(dmb^2) + mag_covmat is the dataset's.

Every dataset also gets the YAML block of this package's own Cobaya class (:mod:`pbuf_data.cobaya`).

SACC (the LSST-DESC format, package ``sacc``): one FITS file per dataset, one ``Misc`` tracer named after the
dataset, one data point per point tagged with ``z`` and its observable type (the SACC data type is
``pbuf_<observable_type>``), the covariance, and the JSON provenance in the metadata.

Paths written into the YAML blocks are relative to the project folder: run ``cobaya-run`` from there.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_text
from .errors import PbufDataError

# this package's observable types -> the names Cobaya's bao.generic uses
COBAYA_BAO_NAMES = {
    "DM_over_rd": "DM_over_rs",
    "DH_over_rd": "DH_over_rs",
    "DV_over_rd": "DV_over_rs",
    "rd_over_DV": "rs_over_DV",
    "H_times_rd": "Hz_rs",
    "DA_over_rd": "DA_over_rs",
    "fsigma8": "f_sigma8",
}


def cobaya_native_kind(ds) -> str | None:
    """``bao.generic``, ``sn.pantheon`` or None: which Cobaya class can read this dataset's native export."""
    kind = ds.metadata.get("kind")
    if kind == "sn":
        return "sn.pantheon"
    types = set(ds.observable_type.tolist())
    # bao.generic's f_sigma8 has no Alcock-Paczynski rescaling: datasets with a reference Omega_m per point need it
    if types <= set(COBAYA_BAO_NAMES) and ds.likelihood().form == "gaussian" and "omega_m_ref" not in ds.columns:
        return "bao.generic"
    return None


def _fmt(x: float) -> str:
    return repr(float(x))  # shortest text that round-trips the float64 exactly


def _yaml(block: dict) -> str:
    import yaml

    return yaml.safe_dump(block, sort_keys=False, default_flow_style=False)


def write_cobaya_export(ds, folder: str | Path, rel_folder: str) -> list[Path]:
    """Write the Cobaya files of ``ds`` into ``folder``; YAML paths use ``rel_folder`` (relative to the project)."""
    folder = Path(folder)
    name = ds.name
    written = []

    def put(filename, text):
        write_text(folder / filename, text)
        written.append(folder / filename)

    tree = str(Path(rel_folder).parent)  # the result tree the exports belong to (load_dataset reads a tree directly)
    likelihood = {f"pbuf_{name}": {"class": "pbuf_data.cobaya.Dataset", "dataset": name, "root": tree}}
    native = cobaya_native_kind(ds)
    if native == "bao.generic":
        put(f"{name}.bao_mean.txt", "# z value observable\n" + "".join(
            f"{_fmt(z)} {_fmt(v)} {COBAYA_BAO_NAMES[t]}\n" for z, v, t in zip(ds.z, ds.observable, ds.observable_type)))
        put(f"{name}.bao_cov.txt", _matrix_text(ds.covariance))
        likelihood[f"{name}_bao_generic"] = {"class": "bao.generic", "path": rel_folder,
                                             "measurements_file": f"{name}.bao_mean.txt",
                                             "cov_file": f"{name}.bao_cov.txt", "rs_rescale": 1.0}
    elif native == "sn.pantheon":
        n = len(ds)
        sigma = np.sqrt(np.diag(ds.covariance))
        if not (sigma > 0).all():
            raise PbufDataError("SN export needs a positive variance for every point", dataset=name, check="export")
        zhel = np.asarray(ds.columns.get("zHEL", ds.z), dtype=np.float64)
        # mu states its absolute magnitude (column M_B): Cobaya then compares mb = mu + M_B with M_B fixed
        fixed = "M_B" in ds.columns and not ds.likelihood().marginalize_offset
        magnitude = float(np.asarray(ds.columns["M_B"])[0]) if fixed else 0.0
        ids = ds.columns.get("id")
        header = "#name zcmb zhel dz mb dmb x1 dx1 color dcolor 3rdvar d3rdvar cov_m_s cov_m_c cov_s_c set ra dec biascor\n"
        rows = []
        for i in range(n):
            sn_id = f"sn{i}" if ids is None else "".join(str(ids[i]).split()) or f"sn{i}"
            rows.append(f"{sn_id} {_fmt(ds.z[i])} {_fmt(zhel[i])} 0 {_fmt(ds.observable[i] + magnitude)} {_fmt(sigma[i])}"
                        " 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
        put(f"{name}.lcparam.txt", header + "".join(rows))
        off = ds.covariance - np.diag(np.diag(ds.covariance))
        put(f"{name}.mag_covmat.txt", f"{n}\n" + "".join(f"{_fmt(v)}\n" for v in off.ravel()))
        put(f"{name}.dataset", "name = " + name + "\n"
            f"data_file = {name}.lcparam.txt\npecz = 0\ntwoscriptmfit = F\nhas_mag_covmat = T\n"
            f"mag_covmat_file = {name}.mag_covmat.txt\nhas_stretch_covmat = F\nhas_colour_covmat = F\n"
            "has_mag_stretch_covmat = F\nhas_mag_colour_covmat = F\nhas_stretch_colour_covmat = F\n")
        likelihood[f"{name}_sn_pantheon"] = {"class": "sn.pantheon", "path": rel_folder, "dataset_file": f"{name}.dataset",
                                             "use_abs_mag": fixed}
    block = {"likelihood": likelihood}
    if native == "sn.pantheon" and fixed:
        block["params"] = {"Mb": magnitude}  # the absolute magnitude the published mu assumes
    put(f"{name}.cobaya.yaml", f"# Cobaya likelihood blocks for {name} (run cobaya from the project folder)\n"
        + _yaml(block))
    return written


def _matrix_text(matrix: np.ndarray) -> str:
    return "".join(" ".join(_fmt(v) for v in row) + "\n" for row in matrix)


def write_sacc(ds, path: str | Path) -> Path:
    """One SACC file for ``ds`` (see the module documentation)."""
    import sacc

    s = sacc.Sacc()
    s.add_tracer("Misc", ds.name)
    for z, value, obs in zip(ds.z, ds.observable, ds.observable_type):
        s.add_data_point(f"pbuf_{obs}", (ds.name,), float(value), z=float(z), observable_type=str(obs))
    s.add_covariance(np.asarray(ds.covariance))
    s.metadata["pbuf_dataset"] = ds.name
    s.metadata["pbuf_provenance"] = json.dumps(ds.provenance, sort_keys=True)
    s.metadata["pbuf_metadata"] = json.dumps(ds.metadata, sort_keys=True)
    with atomic_path(path) as tmp:
        s.save_fits(str(tmp), overwrite=True)
    return Path(path)


def write_exports(ds, folder: str | Path, rel_folder: str) -> list[Path]:
    """All exports of ``ds`` (Cobaya files and the SACC file, each named ``<name>.*``) in ``folder``; files of
    an earlier export of the same dataset that this one does not write again are removed afterwards, so the
    folder holds one consistent export per dataset."""
    folder = Path(folder)
    written = write_cobaya_export(ds, folder, rel_folder)
    written.append(write_sacc(ds, folder / f"{ds.name}.sacc.fits"))
    keep = {p.name for p in written}
    for path in folder.glob(f"{ds.name}.*"):
        if path.is_file() and path.name not in keep:
            path.unlink()
    return written
