"""Likelihoods of derived datasets: ``chi2(theory)`` and ``loglike(theory)``.

Every dataset is one of two forms:

Gaussian
    data vector d, covariance C: chi2 = r^T C^-1 r with r = d - t. The Cholesky factor L of C is computed once
    and cached; chi2 is then one triangular solve, w = L^-1 r, chi2 = w.w (a diagonal C is used directly).
    For supernova magnitudes with a free absolute magnitude (type ``m_b_corr``; a ``mu`` states the M_B it assumes
    and is used as it is) the constant offset (M_B, degenerate with H0) is by default marginalized analytically
    over a flat prior, as the collaborations' SN likelihoods do
    (Conley et al. 2011, eq. A9; Cobaya's ``sn`` classes): chi2 = A - B^2/E with A = r^T C^-1 r,
    B = 1^T C^-1 r, E = 1^T C^-1 1 (in a combination, one offset per SN member: chi2 = A - B^T E^-1 B with the
    members' indicator columns in place of 1). The theory-independent term ln det(E/2pi) of the marginal
    likelihood is left out (it is in :attr:`Likelihood.log_normalization`). ``marginalize_offset=False`` keeps the
    offset in the data.
Table
    a likelihood published as a 1-D table (one observable against chi2 or ln L) or a 2-D grid (two observables
    and ln L) at one effective redshift. ln L is interpolated the way Cobaya's ``bao.generic`` likelihood does:
    an interpolating cubic spline of ln L in 1-D (``scipy.interpolate.UnivariateSpline``, s=0, k=3; Cobaya's
    ``prob_dist``), a bicubic spline on the 2-D grid (``RectBivariateSpline``, kx=ky=3; Cobaya's ``grid_file``).
    A theory point outside the grid is refused (an error, not -inf). chi2 is -2 ln L.

A 1-D table is carried in the dataset as aux arrays ``table.<observable_type>`` (the grid, increasing) and
``table.lnL`` (or, for the SDSS MGS chi2 curve, ``chi2_<observable_type>`` and ``chi2``); a 2-D grid as ``grid.<type1>``, ``grid.<type2>`` (the axes) and ``grid.lnL`` (shape n1 x n2), with the
point's z and its two observable types in the core arrays.
A dataset may say, in ``metadata.likelihood``, another ``spline_degree`` (1: the linear and bilinear interpolation
of MontePython's Lyman-alpha scans and CosmoSIS's DES Y3 BAO) and ``interpolated: likelihood``: the table then holds
``table.likelihood`` / ``grid.likelihood`` (the probability over its maximum, zeros allowed), which is interpolated
and its ln taken after (-inf where it is not positive), as MontePython's ``bao_boss_aniso`` does.

``theory`` is either a vector in the dataset's order (one value per point) or a callable ``theory(z, observable_type)``
returning the predictions for an array of redshifts of one observable type (it is called once per type).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..core.errors import PbufDataError

GAUSSIAN, TABLE_1D, GRID_2D = "gaussian", "table_1d", "grid_2d"
# SN observable types whose absolute magnitude is free (README "Observable types"): m_b_corr = mu + M_B, M_B a
# nuisance; a `mu` states the M_B it assumes (column M_B) and is compared with the theory as it is
OFFSET_FREE_TYPES = frozenset({"m_b_corr", "mu_offset_free"})


class Likelihood:
    """The likelihood of one dataset (see the module documentation)."""

    def __init__(self, dataset, *, form: str = "auto", marginalize_offset: bool | None = None):
        self.dataset = dataset
        self.name = dataset.name
        table = _table_axes(dataset)
        if form == "auto":
            form = table[0] if table else GAUSSIAN
        if form not in (GAUSSIAN, TABLE_1D, GRID_2D):
            raise PbufDataError(f"unknown likelihood form {form!r} (gaussian, table_1d, grid_2d)", dataset=self.name,
                                check="likelihood form")
        if form != GAUSSIAN and (not table or table[0] != form):
            raise PbufDataError(f"dataset carries no {form} likelihood", dataset=self.name, check="likelihood form")
        self.form = form
        self._offsets = _offset_columns(dataset)
        if marginalize_offset and self._offsets is None:
            raise PbufDataError("only supernova magnitudes with a free absolute magnitude (m_b_corr) have an offset "
                                "to marginalize", dataset=self.name, check="marginalize_offset")
        self.marginalize_offset = self._offsets is not None if marginalize_offset is None else bool(marginalize_offset)
        # a table or grid: its spline's degree, and whether it runs through ln L ("lnL") or through the likelihood
        # itself ("likelihood"), as the dataset says (None for a Gaussian)
        self.degree = self.interpolated = None
        if form != GAUSSIAN:
            self._axes, self.interpolated = table[1], table[2]
            stated = dataset.metadata.get("likelihood")
            self.degree = int(stated.get("spline_degree", 3)) if isinstance(stated, dict) else 3
            if self.degree not in (1, 3):
                raise PbufDataError(f"spline_degree {self.degree} (1 or 3)", dataset=self.name,
                                    check="likelihood form")

    @property
    def table(self):
        """((axis, ...), lnL) of a table or grid likelihood (None for a Gaussian)."""
        if self.form == GAUSSIAN:
            return None
        axes, values = self._axes
        if self.interpolated == "likelihood":
            with np.errstate(divide="ignore"):
                return axes, np.log(values)
        return self._axes

    # -- theory ------------------------------------------------------------
    def theory_vector(self, theory) -> np.ndarray:
        """The theory as a vector in the dataset's order, checked for length and finiteness."""
        ds = self.dataset
        if callable(theory):
            out = np.empty(len(ds))
            for obs_type in dict.fromkeys(ds.observable_type.tolist()):
                sel = ds.observable_type == obs_type
                values = np.asarray(theory(ds.z[sel], obs_type), dtype=np.float64)
                if values.shape not in ((int(sel.sum()),), ()):
                    raise PbufDataError(
                        f"theory({obs_type!r}) returned shape {values.shape} for {int(sel.sum())} redshifts",
                        dataset=self.name, check="theory length")
                out[sel] = values
        else:
            out = np.asarray(theory, dtype=np.float64)
            if out.shape != (len(ds),):
                raise PbufDataError(
                    f"theory vector has shape {out.shape}; the dataset has {len(ds)} points "
                    f"(types {sorted(set(ds.observable_type.tolist()))})", dataset=self.name, check="theory length")
        bad = np.flatnonzero(~np.isfinite(out))
        if bad.size:
            i = int(bad[0])
            raise PbufDataError(
                f"theory is not finite at point {i} ({ds.observable_type[i]} at z={ds.z[i]:g}): {out[i]!r}"
                + (f" and {bad.size - 1} more" if bad.size > 1 else ""), dataset=self.name, check="theory finite")
        return out

    # -- evaluation ----------------------------------------------------------
    def chi2(self, theory) -> float:
        t = self.theory_vector(theory)
        if self.form == GAUSSIAN:
            return self._gaussian_chi2(self.dataset.observable - t)
        return -2.0 * self._table_loglike(t)

    def loglike(self, theory) -> float:
        """ln L up to its theory-independent normalization (see :attr:`log_normalization`): -chi2/2."""
        return -0.5 * self.chi2(theory)

    @cached_property
    def log_normalization(self) -> float:
        """The theory-independent constant dropped from ``loglike``: -(N ln 2pi + ln det C)/2 for a Gaussian, minus
        ln det(E/2pi)/2 with marginalized offsets, so that loglike + log_normalization is the normalized (marginal)
        log-likelihood. Zero for tables, whose ln L is used as published."""
        if self.form != GAUSSIAN:
            return 0.0
        n = len(self.dataset)
        value = -0.5 * (n * np.log(2 * np.pi) + self._logdet)
        if self.marginalize_offset:
            sign, logdet = np.linalg.slogdet(self._offsets_gram / (2 * np.pi))
            value -= 0.5 * logdet
        return float(value)

    # -- Gaussian ------------------------------------------------------------
    @cached_property
    def _factor(self):
        """(kind, factor): the diagonal's square root, or the lower Cholesky factor, computed once."""
        variances = self.dataset.covariance_diagonal  # no N x N matrix for a diagonal covariance
        if variances is not None:
            sigma = np.sqrt(variances)
            if not (sigma > 0).all():
                raise PbufDataError("covariance has a non-positive variance", dataset=self.name, check="covariance")
            return "diag", sigma
        from scipy.linalg import cholesky

        try:
            return "chol", cholesky(self.dataset.covariance, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise PbufDataError("covariance is not positive definite", dataset=self.name, check="cholesky") from None

    def _whiten(self, r: np.ndarray) -> np.ndarray:
        kind, factor = self._factor
        if kind == "diag":
            return r / factor
        from scipy.linalg import solve_triangular

        return solve_triangular(factor, r, lower=True, check_finite=False)

    @cached_property
    def _offsets_white(self) -> np.ndarray:
        """L^-1 U, U holding one indicator column per offset (the SN rows of each SN member)."""
        kind, factor = self._factor
        u = self._offsets
        if kind == "diag":
            return u / factor[:, None]
        from scipy.linalg import solve_triangular

        return solve_triangular(factor, u, lower=True, check_finite=False)

    @cached_property
    def _offsets_gram(self) -> np.ndarray:
        """E = U^T C^-1 U."""
        return self._offsets_white.T @ self._offsets_white

    @cached_property
    def _logdet(self) -> float:
        kind, factor = self._factor
        return float(2 * np.log(factor).sum() if kind == "diag" else 2 * np.log(np.diag(factor)).sum())

    def _gaussian_chi2(self, r: np.ndarray) -> float:
        w = self._whiten(r)
        chi2 = float(w @ w)
        if self.marginalize_offset:
            b = self._offsets_white.T @ w
            chi2 -= float(b @ np.linalg.solve(self._offsets_gram, b))
        return chi2

    # -- tables ----------------------------------------------------------------
    @cached_property
    def _spline(self):
        from scipy.interpolate import RectBivariateSpline, UnivariateSpline

        k = self.degree
        if self.form == TABLE_1D:
            (x,), values = self._axes
            return UnivariateSpline(x, values, s=0, k=k, ext=2)
        (x, y), values = self._axes
        return RectBivariateSpline(x, y, values, kx=k, ky=k)

    def _table_loglike(self, t: np.ndarray) -> float:
        axes, _ = self._axes
        ds = self.dataset
        for value, axis, obs_type in zip(t, axes, ds.observable_type):
            if not axis[0] <= value <= axis[-1]:
                raise PbufDataError(
                    f"theory {obs_type} = {value:.6g} at z={ds.z[0]:g} is outside the likelihood grid "
                    f"[{axis[0]:.6g}, {axis[-1]:.6g}]", dataset=self.name, check="theory inside grid")
        value = float(self._spline(t[0])) if self.form == TABLE_1D else float(self._spline(t[0], t[1])[0, 0])
        if self.interpolated == "likelihood":
            return float(np.log(value)) if value > 0 else -np.inf
        return value


def sn_rows(dataset) -> np.ndarray:
    """The supernova rows: all of an SN dataset, the rows of SN members in a combination."""
    kind = dataset.metadata.get("kind")
    if kind == "combination" and "kind" in dataset.columns:
        return np.asarray(dataset.columns["kind"]) == "sn"
    return np.full(len(dataset), kind == "sn")


def _offset_columns(dataset) -> np.ndarray | None:
    """N x k indicators of the rows sharing one free magnitude offset: the offset-free SN rows (types in
    OFFSET_FREE_TYPES) of the dataset, or of each SN member of a combination; None without such rows."""
    rows = np.isin(dataset.observable_type, list(OFFSET_FREE_TYPES)) & sn_rows(dataset)
    if not rows.any():
        return None
    if dataset.metadata.get("kind") == "sn":
        return rows[:, None].astype(np.float64)
    members = np.asarray(dataset.columns["member"])
    names = list(dict.fromkeys(members[rows].tolist()))
    return np.stack([(members == m) & rows for m in names], axis=1).astype(np.float64)


def _table_axes(dataset):
    """(form, ((axes...), values), quantity) of a table or grid carried by the dataset, or None; the values are
    ln L, or the likelihood over its maximum when quantity is ``likelihood``."""
    aux = dataset.aux
    grid_keys = sorted(k for k in aux if k.startswith("grid.") and k not in ("grid.lnL", "grid.likelihood"))
    quantity = "likelihood" if "grid.likelihood" in aux or "table.likelihood" in aux else "lnL"
    if f"grid.{quantity}" in aux:
        types = list(dict.fromkeys(dataset.observable_type.tolist()))
        axes = tuple(np.asarray(aux[f"grid.{t}"], dtype=np.float64) for t in types if f"grid.{t}" in aux)
        lnl = np.asarray(aux[f"grid.{quantity}"], dtype=np.float64)
        if len(types) != 2 or len(axes) != 2 or len(grid_keys) != 2 or lnl.shape != (axes[0].size, axes[1].size):
            raise PbufDataError("a 2-D likelihood grid needs two observable types, their axes grid.<type> and "
                                f"grid.{quantity} of shape (n1, n2); found {grid_keys} and grid.{quantity} "
                                f"{lnl.shape}",
                                dataset=dataset.name, check="likelihood grid")
        return GRID_2D, (axes, lnl), quantity
    table = [k for k in aux if k.startswith("table.") and k not in ("table.lnL", "table.likelihood")]
    if table and f"table.{quantity}" in aux:
        keys, lnl = table, np.asarray(aux[f"table.{quantity}"], dtype=np.float64)
        obs_type = keys[0][len("table."):]
        if set(dataset.observable_type.tolist()) != {obs_type} or len(dataset) != 1 or len(keys) != 1:
            raise PbufDataError(f"a 1-D likelihood table of {obs_type} needs exactly one {obs_type} point",
                                dataset=dataset.name, check="likelihood table")
        return TABLE_1D, ((np.asarray(aux[keys[0]], dtype=np.float64),), lnl), quantity
    keys = [k for k in aux if k.startswith("chi2_") and k != "chi2_alpha"]  # the SDSS MGS chi2(alpha) table
    if keys and ("chi2" in aux or "lnL" in aux):
        obs_type = keys[0][len("chi2_"):]
        if set(dataset.observable_type.tolist()) != {obs_type} or len(dataset) != 1:
            raise PbufDataError(f"a 1-D likelihood table of {obs_type} needs exactly one {obs_type} point",
                                dataset=dataset.name, check="likelihood table")
        x = np.asarray(aux[keys[0]], dtype=np.float64)
        lnl = -0.5 * np.asarray(aux["chi2"], dtype=np.float64) if "chi2" in aux else np.asarray(aux["lnL"], dtype=np.float64)
        return TABLE_1D, ((x,), lnl), "lnL"
    return None
