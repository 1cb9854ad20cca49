"""Memory profile of one SN derivation: peak RSS inside each stage (a sampling thread, psutil).

    python bench/_memtrace.py <entry.json> <name> <raw_dir> <out.npz> <out.json>

Prints, for each stage of pbuf_data's derivation, the RSS when it starts and ends and the peak while it
runs: the pandas parse of the covariance file, the counted-matrix reader around it, the SN derivation
(symmetrization and row selection), the Dataset checks and the save.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import psutil

PROC = psutil.Process()
SAMPLES: list[tuple[float, int]] = []
STAGES: list[tuple[str, float, float, int, int]] = []


def _sample():
    while True:
        SAMPLES.append((time.perf_counter(), PROC.memory_info().rss))
        time.sleep(0.002)


def _wrap(owner, attr: str, label: str):
    original = getattr(owner, attr)

    def wrapper(*args, **kwargs):
        start, before = time.perf_counter(), PROC.memory_info().rss
        try:
            return original(*args, **kwargs)
        finally:
            STAGES.append((label, start, time.perf_counter(), before, PROC.memory_info().rss))

    setattr(owner, attr, wrapper)


def main() -> None:
    threading.Thread(target=_sample, daemon=True).start()
    import pbuf_data.model.dataset as dataset_module
    import pbuf_data.read.derive as derive
    import pbuf_data.read.formats.sn_table as sn
    import pbuf_data.read.textio as textio

    _wrap(textio.RawFile, "counted_matrix", "counted_matrix (textio)")
    _wrap(sn, "derive", "derive_sn_table: the reader (formats/sn_table.py)")
    _wrap(derive, "check_pins", "check_pins: the raw files against their pins (derive/__init__.py)")
    _wrap(dataset_module.Dataset, "save", "Dataset.save (dataset.py)")
    entry = json.load(open(sys.argv[1]))
    start = time.perf_counter()
    dataset = derive.derive_dataset(sys.argv[2], entry, sys.argv[3], max_bytes=None)
    dataset.save(sys.argv[4], sys.argv[5])
    end = time.perf_counter()
    time.sleep(0.01)
    n = dataset.covariance.shape[0]
    print(f"memory timeline (MB; the derived covariance is {n}x{n} = {8 * n * n / 1e6:.0f} MB):")
    for label, t0, t1, before, after in sorted(STAGES, key=lambda s: s[1]):
        peak = max([rss for t, rss in SAMPLES if t0 <= t <= t1] + [before, after])
        print(f"  {label:58s} {t1 - t0:7.2f} s  start {before / 1e6:7.0f}  peak {peak / 1e6:7.0f}  end {after / 1e6:7.0f}")
    spans = {label.split(" ")[0].rstrip(":"): (t0, t1) for label, t0, t1, _, _ in STAGES}
    if "counted_matrix" in spans and "derive_sn_table" in spans:
        t0, t1 = spans["counted_matrix"][1], spans["derive_sn_table"][1]
        peak = max(rss for t, rss in SAMPLES if t0 <= t <= t1)
        print(f"  {'  of which after the parse (asymmetry, (C+C^T)/2, np.ix_)':58s} {t1 - t0:7.2f} s  {'':14s}peak {peak / 1e6:7.0f}")
    total = max(rss for t, rss in SAMPLES if start <= t <= end)
    print(f"  {'whole derivation + save':58s} {end - start:7.2f} s  peak {total / 1e6:7.0f}")


if __name__ == "__main__":
    main()
