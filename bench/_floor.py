#!/usr/bin/env python3
"""The one-process floor of P8: run the jobs of a finished workflow run again, in this one process.

    python bench/_floor.py JOBS_JSON PROJECT TIMINGS_JSON

JOBS_JSON lists the jobs of that run as Snakemake recorded them in its metadata (rule, start time,
outputs, logs and the command). Every rule's command is ``<python> scripts/RULE.py ...`` (from ``shell:``, or
logged by a job that ran in Snakemake's process);
here the script and its arguments go to ``pbuf_data.operate.job.run_here`` in this process instead, which calls the
rule's ``pbuf_data.operate.steps`` function. Jobs run in the order they started (a job starts after the jobs it
depends on ended), in PROJECT reset to the state before that run, with PROJECT's ``src`` first on the
path. Like Snakemake, the folders of each job's outputs and logs are created first. So the floor does
the same steps on the same files, in an order the workflow could have used, without the per-job
interpreters, imports and scheduling; whatever rules the workflow has, nothing here names them.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path


def job_arguments(command: str) -> list[str]:
    """The rule's script and its arguments in a job's shell command."""
    argv = shlex.split(command)
    for i, word in enumerate(argv):
        if word.endswith(".py") and os.path.basename(os.path.dirname(word)) == "scripts":
            return argv[i:]
    raise SystemExit(f"floor: not the command of a rule's script: {command[:200]}")


def main() -> None:
    jobs_path, project, timings_path = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve()
    jobs = sorted(json.loads(jobs_path.read_text()), key=lambda j: j["starttime"])
    os.chdir(project)
    sys.path.insert(0, str(project / "src"))
    from pbuf_data.operate.job import run_here
    from pbuf_data.operate.joblog import JobFailed

    timings = []
    for job in jobs:
        for name in [*job["output"], *job["log"]]:
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        argv = job_arguments(job["shellcmd"])
        start = time.perf_counter()
        try:
            run_here(argv)
        except JobFailed as exc:
            raise SystemExit(f"floor: job of rule {job['rule']} failed ({exc}; log {job['log']})") from None
        timings.append({"rule": job["rule"], "output": sorted(job["output"]), "seconds": time.perf_counter() - start})
    timings_path.write_text(json.dumps(timings))


if __name__ == "__main__":
    main()
