"""Exports of a derived dataset for the fitting codes of the field.

Cobaya: every YAML file is a complete input that ``cobaya-run`` executes as it is, offline, from the project
folder, with exactly one likelihood (its paths are relative to that folder)::

    cobaya-run results/<corpus>/exports/<name>.cobaya.yaml

* ``<name>.cobaya.yaml``: this package's likelihood class (:mod:`pbuf_data.fit.cobaya`), which returns the dataset's
  own ``loglike``, so the -2 ln L Cobaya reports is ``ds.chi2``;
* ``<name>.native.cobaya.yaml``, where one of Cobaya's own likelihood classes reads the dataset: the same with that
  class (run without the check that Cobaya's data packages are installed,
  :mod:`pbuf_data.fit.cobaya_theory`) reading the native files written beside it:

  - Gaussian vectors of BAO distances, H*r_d and f*sigma8 (BAO, BAO+fsigma8, RSD): the measurements file
    (``z value observable`` per line, Cobaya's names) and covariance file of Cobaya's ``bao.generic``, with
    ``rs_rescale: 1`` (the values are already in units of r_d);
  - likelihood tables and grids of those observables: the ``grid_file`` of ``bao.generic`` (one line per node,
    the axes' values, first axis slowest, then the likelihood exp(ln L); not where ln L < -700, which exp would
    underflow), with the table's ``redshift`` and its ``observable_1`` (and ``observable_2``);
  - supernovae: the CosmoMC/Cobaya "lcparam" layout read by Cobaya's ``sn.pantheon`` class — a ``.dataset`` file,
    the light-curve table (zcmb = the dataset's z, zhel, mb = the published magnitude or distance modulus,
    dmb = the square root of the covariance diagonal) and ``mag_covmat`` (the covariance minus its diagonal,
    first line N), with ``pecz = 0``, so that Cobaya's total covariance diag(dmb^2) + mag_covmat is the
    dataset's. Cobaya's SN class adds the constant ln(E/2 pi), E = 1^T C^-1 1, to its -2 ln L.

Both carry the same theory, parameters and sampler: the theory ``pbuf_data.fit.cobaya_theory.FlatLCDM`` (the flat
LCDM background of :mod:`pbuf_data.model.cosmology`, no Boltzmann code needed), its four parameters sampled over wide
priors, and the ``evaluate`` sampler at the stated point: the configured fiducial cosmology. For a fit, keep the
``likelihood`` block and replace the rest (e.g. ``theory: {camb: ...}`` and an ``mcmc`` sampler).

SACC (the LSST-DESC format, package ``sacc``): one FITS file per dataset, one ``Misc`` tracer named after the
dataset, one data point per point (data type ``pbuf_<observable_type>``) tagged with ``z``, its observable type
and every per-point column of the dataset (``zHEL``, ``M_B``, ``omega_m_ref``, ``member``, ...; a NaN value is
no tag, SACC's way of saying a point has none); metadata
``pbuf_likelihood_form`` (``gaussian``, ``table_1d``, ``grid_2d``), ``pbuf_offset_marginalized`` (the SN
magnitude offset marginalized in ``ds.chi2``), the dataset's metadata and provenance (JSON). A Gaussian dataset
carries its covariance. A likelihood table or grid carries ln L itself: one data point per node, data type
``pbuf_lnL``, on a second ``Misc`` tracer ``<name>_lnL``, tagged with ``z`` and the node's value of each axis
(tag = the axis' observable type), value ln L; ln L between nodes is the spline of :mod:`pbuf_data.model.likelihood`.
Its points are then a summary, not a Gaussian likelihood: their covariance is in the metadata
(``pbuf_summary_covariance``, JSON), and the file has no SACC covariance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path, write_text
from ..core.errors import PbufDataError

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
    if not types <= set(COBAYA_BAO_NAMES) or "omega_m_ref" in ds.columns:
        return None
    lik = ds.likelihood()
    if lik.table is None:
        return "bao.generic"
    # a table or grid goes to bao.generic as the likelihood exp(ln L), which it takes the log of and splines
    # cubically: only for a dataset whose own reader does the same (not the linear scans of MontePython or CosmoSIS,
    # nor a probability interpolated as such), and whose ln L does not underflow there
    if lik.degree != 3 or lik.interpolated != "lnL":
        return None
    return "bao.generic" if float(np.min(lik.table[1])) > MIN_NATIVE_LNL else None


MIN_NATIVE_LNL = -700.0  # exp(-700) = 1e-304: a normal float64, whose log gives back ln L


def _fmt(x: float) -> str:
    return repr(float(x))  # shortest text that round-trips the float64 exactly


def _yaml(block: dict) -> str:
    import yaml

    return yaml.safe_dump(block, sort_keys=False, default_flow_style=False)


# the companion's parameters: Cobaya name -> (fiducial_cosmology key, prior range, LaTeX)
RUN_PARAMS = {
    "H0": ("H0", (40.0, 100.0), "H_0"),
    "omegam": ("Omega_m", (0.05, 0.7), r"\Omega_\mathrm{m}"),
    "ombh2": ("Omega_b_h2", (0.005, 0.1), r"\Omega_\mathrm{b} h^2"),
    "sigma8": ("sigma8", (0.4, 1.2), r"\sigma_8"),
}


THEORY_FIXED = ("T_cmb", "N_eff")  # the companion theory's own settings, from the same block


def run_point(fiducial: dict) -> dict[str, float]:
    """The point every companion evaluates at (Cobaya's parameter names), from the ``fiducial_cosmology`` block,
    which must also give the theory's fixed settings."""
    missing = [key for key in (*(key for key, *_ in RUN_PARAMS.values()), *THEORY_FIXED) if key not in fiducial]
    if missing:
        raise PbufDataError(f"fiducial_cosmology lacks {missing}: the exports evaluate their likelihood there",
                            check="export point")
    return {name: float(fiducial[key]) for name, (key, *_) in RUN_PARAMS.items()}


def _runnable(title: str, run_as: str, likelihood: dict, fiducial: dict, fixed: dict | None = None) -> str:
    """A complete Cobaya input: one likelihood, the package's theory, its parameters, the evaluate sampler."""
    point = run_point(fiducial)
    params = {name: {"prior": {"min": lo, "max": hi}, "ref": point[name], "latex": latex}
              for name, (_, (lo, hi), latex) in RUN_PARAMS.items()}
    params.update(fixed or {})
    info = {
        "likelihood": likelihood,
        "theory": {"pbuf_data.fit.cobaya_theory.FlatLCDM": {key: float(fiducial[key]) for key in THEORY_FIXED}},
        "params": params,
        "sampler": {"evaluate": {"override": point}},
        "output": None,
    }
    head = (f"# {title}\n"
            f"# Run from the project folder, as it is: cobaya-run {run_as}\n"
            "# It prints chi2_<likelihood> (-2 ln L) at the point of sampler.evaluate.override (the fiducial_cosmology\n"
            "# of the project's config): the flat LCDM background of pbuf_data.model.cosmology, no Boltzmann code needed.\n"
            "# It writes nothing (output: null). For a fit keep the likelihood block; replace theory (e.g. camb),\n"
            "# params and sampler (e.g. mcmc), and name an output prefix.\n")
    return head + _yaml(info)


def write_cobaya_export(ds, folder: str | Path, rel_folder: str, fiducial: dict) -> list[Path]:
    """Write the Cobaya files of ``ds`` into ``folder``; YAML paths use ``rel_folder`` (relative to the project).
    ``fiducial`` (the config's ``fiducial_cosmology``) is the point the YAML files evaluate at."""
    folder = Path(folder)
    name = ds.name
    written = []

    def put(filename, text):
        write_text(folder / filename, text)
        written.append(folder / filename)

    tree = str(Path(rel_folder).parent)  # the result tree the exports belong to (load_dataset reads a tree directly)
    put(f"{name}.cobaya.yaml", _runnable(
        f"{name}: this package's Cobaya likelihood of the published dataset (-2 ln L = ds.chi2)",
        f"{rel_folder}/{name}.cobaya.yaml",
        {f"pbuf_{name}": {"class": "pbuf_data.fit.cobaya.Dataset", "dataset": name, "root": tree}}, fiducial))
    native = cobaya_native_kind(ds)
    likelihood, fixed = None, None
    table = ds.likelihood().table
    if native == "bao.generic" and table is not None:
        axes, lnl = table
        types = [COBAYA_BAO_NAMES[t] for t in dict.fromkeys(ds.observable_type.tolist())]
        # one line per node, the first axis slowest (bao.generic's grid_file; it interpolates the log of the last
        # column as this package does ln L: a cubic spline in 1-D, a bicubic spline on the 2-D grid)
        put(f"{name}.bao_grid.txt", f"# {' '.join(types)} likelihood\n" + "".join(
            " ".join(_fmt(axis[k]) for axis, k in zip(axes, index)) + f" {_fmt(np.exp(lnl[index]))}\n"
            for index in np.ndindex(lnl.shape)))
        likelihood = {f"{name}_bao_generic": {"class": "pbuf_data.fit.cobaya_theory.BaoGeneric", "path": rel_folder,
                                              "measurements_file": None,  # (bao.generic's default names one)
                                              "grid_file": f"{name}.bao_grid.txt", "redshift": float(ds.z[0]),
                                              "rs_rescale": 1.0,
                                              **{f"observable_{i + 1}": t for i, t in enumerate(types)}}}
    elif native == "bao.generic":
        put(f"{name}.bao_mean.txt", "# z value observable\n" + "".join(
            f"{_fmt(z)} {_fmt(v)} {COBAYA_BAO_NAMES[t]}\n" for z, v, t in zip(ds.z, ds.observable, ds.observable_type)))
        put(f"{name}.bao_cov.txt", _matrix_text(ds.covariance))
        likelihood = {f"{name}_bao_generic": {"class": "pbuf_data.fit.cobaya_theory.BaoGeneric", "path": rel_folder,
                                              "measurements_file": f"{name}.bao_mean.txt",
                                              "cov_file": f"{name}.bao_cov.txt", "rs_rescale": 1.0}}
    elif native == "sn.pantheon":
        n = len(ds)
        sigma = np.sqrt(np.diag(ds.covariance))
        if not (sigma > 0).all():
            raise PbufDataError("SN export needs a positive variance for every point", dataset=name, check="export")
        if "zHEL" not in ds.columns:
            raise PbufDataError("SN export needs the heliocentric redshift column zHEL", dataset=name, check="export")
        zhel = np.asarray(ds.columns["zHEL"], dtype=np.float64)
        # mu states its absolute magnitude (column M_B): Cobaya then compares mb = mu + M_B with M_B fixed
        use_abs_mag = "M_B" in ds.columns and not ds.likelihood().marginalize_offset
        magnitude = float(np.asarray(ds.columns["M_B"])[0]) if use_abs_mag else 0.0
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
        likelihood = {f"{name}_sn_pantheon": {"class": "pbuf_data.fit.cobaya_theory.SnPantheon", "path": rel_folder,
                                              "dataset_file": f"{name}.dataset", "use_abs_mag": use_abs_mag}}
        fixed = {"Mb": magnitude} if use_abs_mag else None  # the absolute magnitude the published mu assumes
    if likelihood:
        extra = " plus ln(E/2pi), E = 1^T C^-1 1" if native == "sn.pantheon" else ""
        put(f"{name}.native.cobaya.yaml", _runnable(
            f"{name}: Cobaya's own {native} class reading the files beside this one (-2 ln L = ds.chi2{extra})",
            f"{rel_folder}/{name}.native.cobaya.yaml", likelihood, fiducial, fixed))
    return written


def _matrix_text(matrix: np.ndarray) -> str:
    return "".join(" ".join(_fmt(v) for v in row) + "\n" for row in matrix)


RESERVED_TAGS = ("z", "observable_type")


def _tag(value):
    """A per-point column value as a SACC tag (a Python scalar)."""
    return np.asarray(value).item()


def write_sacc(ds, path: str | Path) -> Path:
    """One SACC file for ``ds`` (see the module documentation)."""
    import sacc

    from ..model.likelihood import GAUSSIAN

    columns = {}
    for key, values in ds.columns.items():
        values = np.asarray(values)
        if key in RESERVED_TAGS or values.ndim != 1:
            raise PbufDataError(f"per-point column '{key}' cannot be a SACC tag (a 1-D column not named "
                                f"{' or '.join(RESERVED_TAGS)})", dataset=ds.name, check="SACC export")
        columns[key] = values
    lik = ds.likelihood()
    s = sacc.Sacc()
    s.add_tracer("Misc", ds.name)
    for i, (z, value, obs) in enumerate(zip(ds.z, ds.observable, ds.observable_type)):
        tags = {key: _tag(values[i]) for key, values in columns.items()}
        tags = {key: v for key, v in tags.items() if not (isinstance(v, float) and np.isnan(v))}  # SACC: no tag
        s.add_data_point(f"pbuf_{obs}", (ds.name,), float(value), z=float(z), observable_type=str(obs), **tags)
    s.metadata["pbuf_dataset"] = ds.name
    s.metadata["pbuf_likelihood_form"] = lik.form
    s.metadata["pbuf_offset_marginalized"] = bool(lik.marginalize_offset)
    if lik.form == GAUSSIAN:
        s.add_covariance(np.asarray(ds.covariance))
    else:
        axes, lnl = lik.table
        types = list(dict.fromkeys(ds.observable_type.tolist()))
        s.add_tracer("Misc", f"{ds.name}_lnL")
        for index in np.ndindex(lnl.shape):
            nodes = {obs: float(axis[k]) for obs, axis, k in zip(types, axes, index)}
            s.add_data_point("pbuf_lnL", (f"{ds.name}_lnL",), float(lnl[index]), z=float(ds.z[0]), **nodes)
        s.metadata["pbuf_summary_covariance"] = json.dumps(np.asarray(ds.covariance).tolist())
        # how the nodes are interpolated, as the dataset's loglike does: a spline of this degree through ln L, or
        # through the likelihood exp(ln L) whose log is then taken
        s.metadata["pbuf_spline_degree"] = int(lik.degree)
        s.metadata["pbuf_interpolated"] = str(lik.interpolated)
    s.metadata["pbuf_provenance"] = json.dumps(ds.provenance, sort_keys=True)
    s.metadata["pbuf_metadata"] = json.dumps(ds.metadata, sort_keys=True)
    with atomic_path(path) as tmp:
        s.save_fits(str(tmp), overwrite=True)
    return Path(path)


def write_exports(ds, folder: str | Path, rel_folder: str, fiducial: dict) -> list[Path]:
    """All exports of ``ds`` (Cobaya files and the SACC file, each named ``<name>.*``) in ``folder``; files of
    an earlier export of the same dataset that this one does not write again are removed afterwards, so the
    folder holds one consistent export per dataset."""
    folder = Path(folder)
    written = write_cobaya_export(ds, folder, rel_folder, fiducial)
    written.append(write_sacc(ds, folder / f"{ds.name}.sacc.fits"))
    keep = {p.name for p in written}
    for path in folder.glob(f"{ds.name}.*"):
        if path.is_file() and path.name not in keep:
            path.unlink()
    return written
