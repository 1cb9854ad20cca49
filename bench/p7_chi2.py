#!/usr/bin/env python3
"""P7: Dataset.chi2 on the SN mock (full covariance) vs a bare scipy cho_solve with a cached factor.

The mock Pantheon+-layout SN dataset (1701 rows in the release file, its full covariance sub-selected with the
cosmology sample) is derived once. In-process, alternating: A = ``ds.chi2(theory)`` with the offset kept
(``marginalize_offset=False``, the same quantity as the floor; the likelihood object and its Cholesky factor
are built once, before timing), B = ``r @ cho_solve(factor, r)`` with the factor computed once (the floor).
Each timed call evaluates 50 theory vectors. Also shown: the marginalized chi2 (the default for SN) against the
same floor. Target: A / B <= 1.2.

    python bench/p7_chi2.py [--quick] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Report, cli, paired, timed  # noqa: E402

TARGET = 1.2
CALLS = 50


def main() -> None:
    args = cli(__doc__.splitlines()[1], runs=41, quick_runs=7)
    report = Report(args, "P7")
    import numpy as np
    from scipy.linalg import cho_factor, cho_solve

    from _data import mock_sn
    from pbuf_data.read.derive import derive_dataset

    raw, entry = mock_sn()
    ds = derive_dataset("mock_sn_pantheon_plus", entry, raw)
    rng = np.random.default_rng(7)
    thetas = [ds.observable + rng.normal(scale=0.1, size=len(ds)) for _ in range(CALLS)]
    factor = cho_factor(ds.covariance, lower=True, check_finite=False)
    kept = ds.likelihood(marginalize_offset=False)
    marginal = ds.likelihood()
    # same numbers first: the benchmark compares one computation done two ways
    r = ds.observable - thetas[0]
    assert abs(kept.chi2(thetas[0]) - r @ cho_solve(factor, r)) <= 1e-9 * (r @ cho_solve(factor, r))
    marginal.chi2(thetas[0])

    def project():
        return sum(kept.chi2(t) for t in thetas)

    def project_marginal():
        return sum(marginal.chi2(t) for t in thetas)

    def floor():
        total = 0.0
        for t in thetas:
            r = ds.observable - t
            total += r @ cho_solve(factor, r, check_finite=False)
        return total

    result = paired(lambda: timed(project), lambda: timed(floor), args.runs, warmup=2)
    report.verdict("chi2 (offset kept)", result.a_wall, result.b_wall, result.ratio, TARGET,
                   floor_name="cho_solve, cached factor", note=f"N = {len(ds)}, {CALLS} calls per run; " + result.spread())
    both = paired(lambda: timed(project_marginal), lambda: timed(floor), max(3, args.runs // 3), warmup=1)
    report.info(f"chi2 with the offset marginalized: {both.a_wall * 1e3 / CALLS:.3f} ms per call vs "
                f"{both.b_wall * 1e3 / CALLS:.3f} ms -> ratio {both.ratio:.2f}")
    if args.profile:
        from _common import profile_call

        profile_call(lambda: [project() for _ in range(5)])
    report.finish()


if __name__ == "__main__":
    main()
