#!/usr/bin/env python3
"""The one-process floor of P8: run the jobs of a finished workflow run again, in this one process.

    python bench/_floor.py SCRIPTS_DIR PROJECT TIMINGS_JSON

SCRIPTS_DIR holds the job scripts Snakemake wrote for that run (``--skip-script-cleanup``): each is
Snakemake's preamble (the job's ``snakemake`` object: input, output, params, wildcards, log) followed by
the rule's script from ``scripts/``, which calls a ``pbuf_data.steps`` function through ``run_job``. They
are executed in the order the jobs started (file modification time: a job starts after the jobs it
depends on ended), in PROJECT reset to the state before that run. Like Snakemake, the folders of each
job's outputs and logs are created first. So the floor does the same steps on the same files, in an
order the workflow could have used, without the per-job interpreters, imports and scheduling; whatever
rules and scripts the workflow has, nothing here names them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

PREAMBLE_END = b"######## snakemake preamble end #########\n"


def main() -> None:
    scripts, project, timings_path = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), Path(sys.argv[3]).resolve()
    order = sorted(scripts.glob("*.py"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    os.chdir(project)
    base_path = list(sys.path)
    timings = []
    for path in order:
        source = path.read_bytes()
        preamble, body = source.split(PREAMBLE_END, 1)
        namespace = {"__name__": "__main__", "__file__": str(path)}
        exec(compile(preamble, str(path), "exec"), namespace)
        job = namespace["snakemake"]
        for name in [*job.output, *job.log]:
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        try:
            exec(compile(body, namespace["__file__"], "exec"), namespace)
        except SystemExit as exc:
            if exc.code:
                raise SystemExit(f"floor: job of rule {job.rule} failed (exit {exc.code}; log {list(job.log)})") from None
        timings.append({"rule": job.rule, "output": sorted(job.output), "seconds": time.perf_counter() - start})
        sys.path[:] = base_path
    timings_path.write_text(json.dumps(timings))


if __name__ == "__main__":
    main()
