"""What a fitter receives: combinations of datasets, exports (Cobaya inputs, SACC), Cobaya's likelihood and
theory classes, and figures. Imports the stages below (read, model, base), not publication."""
