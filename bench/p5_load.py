#!/usr/bin/env python3
"""P5: pbuf_data.load_dataset of the Pantheon+-size dataset vs np.load of the same arrays.

The mock SN dataset (1590 points, 1590^2 covariance) is derived once and saved into
<tmp>/derived (a result tree). In-process, alternating: A = ``load_dataset(name, root=tmp)`` (JSON document, archive,
Dataset checks); B = ``np.load`` of the same arrays saved as plain .npy files (the floor), every array
read in full. Also shown: np.load of the dataset's own .npz, load_dataset(verify=True), and both sides in
fresh processes (imports included). Target (issue 15): A / B <= 2.

    python bench/p5_load.py [--quick] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, Report, Workdir, cli, paired, run, timed  # noqa: E402

TARGET = 2.0


def main() -> None:
    args = cli(__doc__.splitlines()[1], runs=41, quick_runs=7)
    report = Report(args, "P5")
    import numpy as np

    from _data import mock_sn
    from pbuf_data import load_dataset
    from pbuf_data.read.derive import derive_dataset

    raw, entry = mock_sn()
    name = "mock_sn_pantheon_plus"
    with Workdir(args, "p5") as work:
        derived = work / "derived"  
        derived.mkdir(parents=True)
        dataset = derive_dataset(name, entry, raw)
        dataset.save(derived / f"{name}.npz", derived / f"{name}.json")
        npy = {}
        for key, value in dataset.arrays().items():
            npy[key] = work / f"{key}.npy"
            np.save(npy[key], value, allow_pickle=False)
        npz = derived / f"{name}.npz"

        def project():
            ds = load_dataset(name, root=work)
            return ds.covariance[-1, -1]

        def floor():
            arrays = {key: np.load(path, allow_pickle=False) for key, path in npy.items()}
            return arrays["covariance"][-1, -1]

        def same_npz():
            with np.load(npz, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
            return arrays["covariance"][-1, -1]

        result = paired(lambda: timed(project), lambda: timed(floor), args.runs, warmup=2)
        report.verdict("load_dataset", result.a_wall, result.b_wall, result.ratio, TARGET,
                       floor_name="np.load of .npy", note=result.spread())
        vs_npz = paired(lambda: timed(project), lambda: timed(same_npz), args.runs, warmup=1)
        report.info(f"vs np.load of the dataset's own .npz: {vs_npz.a_wall * 1e3:.1f} ms vs {vs_npz.b_wall * 1e3:.1f} ms"
                    f" -> ratio {vs_npz.ratio:.2f}")
        verify = paired(lambda: timed(lambda: load_dataset(name, root=work, verify=True)), lambda: timed(floor), max(3, args.runs // 3))
        report.info(f"load_dataset(verify=True): {verify.a_wall * 1e3:.1f} ms -> ratio {verify.ratio:.2f} to the floor")
        fresh_a = [PY, "-c", "import sys; from pbuf_data import load_dataset; load_dataset(sys.argv[1], root=sys.argv[2])", name, work]
        fresh_b = [PY, "-c", "import sys, numpy as np; [np.load(p) for p in sys.argv[1:]]", *npy.values()]
        fresh = paired(lambda: run(fresh_a), lambda: run(fresh_b), max(3, args.runs // 6))
        report.info(f"fresh processes (imports included): {fresh.a_wall:.3f} s vs {fresh.b_wall:.3f} s -> ratio {fresh.ratio:.2f}")
        if args.profile:
            from _common import profile_call

            profile_call(lambda: [project() for _ in range(20)])
    report.finish()


if __name__ == "__main__":
    main()
