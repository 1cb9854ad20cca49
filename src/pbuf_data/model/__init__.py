"""The data model and its physics: the standard dataset and its files (dataset), its likelihood (chi2 / loglike,
tables and grids), the flat LCDM background the observables are computed with (cosmology), dense-matrix numerics
(matrix). Imports only the common base."""
