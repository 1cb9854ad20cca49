#!/usr/bin/env python3
"""P8: a cold workflow run vs the one-process floor (the same steps, in one Python process).

For the real corpus (``--config raw_dir=<raw>``; --quick: two of its datasets only) and the embedded
default (the mock surveys; in --quick only without the real corpus, two of them), in one temporary copy of the workflow per case:
- A: a cold ``snakemake --cores 2`` run (the copy reset to its state before any run); the jobs it ran
  (rule, outputs, logs, shell command) are read from Snakemake's metadata (the command of a job run in
  Snakemake's process, which has none there, from its log's first line);
- B: the floor, ``bench/_floor.py``: the same jobs' commands (each ``python3 scripts/RULE.py ...``,
  calling a ``pbuf_data.operate.steps`` function) executed one after the other in one process, in the copy reset
  the same way. The jobs are the ones Snakemake ran, so the floor follows the rules whatever they are.
A and B alternate. Targets (issue 15): A / B <= 1.5 in wall time and in CPU time (user + system of all
processes); the per-job overhead (a job's wall time in the workflow, from Snakemake's metadata, minus the
same job's seconds in the floor) <= 0.3 s median. The end of a run (issue 32: no fixed waits): the process's exit
minus the last job's end (Snakemake's metadata), against the same gap of a bare Snakefile with as many trivial jobs
and no job-rate limiter either, run cold in the same loop (Snakemake's own end: its last steps and the
interpreter's exit); the workflow's own end
(the tree's settling check, the verdict block, the helper's exit) may add 0.25 s at most to it, median.
Also printed: the overhead by rule.

    python bench/p8_floor.py [--quick] [--strict] [--runs N] [--keep]
"""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, RAW_DIR, Report, Workdir, bare_workflow, cli, copy_workflow, paired, run, snakemake_cmd  # noqa: E402

TARGET = 1.5
OVERHEAD_TARGET = 0.3  # s per job, median
END_EXTRA_TARGET = 0.25  # s: the workflow's end of a run beyond a bare Snakefile's, median
FLOOR = Path(__file__).with_name("_floor.py")


class Case:
    """One copy of the workflow, reset to its files before any run, for both sides."""

    def __init__(self, work: Path, label: str, config: list[str]):
        self.label, self.config = label, config
        self.project = copy_workflow(work / label)
        self.pristine = {p.relative_to(self.project) for p in self.project.rglob("*")}
        self.jobs = work / f"{label}-jobs.json"
        self.logs = work / f"{label}-logs"
        self.logs.mkdir()
        self.job_walls: list[dict[tuple, float]] = []
        self.end_gaps: list[float] = []  # the process's exit minus the last job's end, per workflow run
        self.bare_gaps: list[float] = []  # the same, for a bare Snakefile of as many jobs
        self.floor_seconds: list[dict[tuple, float]] = []
        self.runs = 0

    def reset(self) -> None:
        """Remove every file and folder the runs added (outputs, logs, .snakemake, mock raw files)."""
        for path in sorted(self.project.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.relative_to(self.project) not in self.pristine:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    def workflow(self):
        self.reset()
        self.runs += 1
        log = self.logs / f"workflow-{self.runs}.log"
        result = run(snakemake_cmd("--cores", "2", *self.config), cwd=self.project, log=log)
        exited = time.time()
        walls, jobs = self._metadata_jobs()
        self.end_gaps.append(exited - max(job["starttime"] + job["wall"] for job in self._ends))
        self.bare_gaps.append(self._bare_end(len(walls)))
        self.job_walls.append(walls)
        self.jobs.write_text(json.dumps(jobs))
        self.outputs = self._data_files()
        return result

    def floor(self):
        self.reset()
        self.runs += 1
        timings = self.logs / f"floor-{self.runs}.json"
        result = run([PY, FLOOR, self.jobs, self.project, timings], log=self.logs / f"floor-{self.runs}.log")
        self.floor_seconds.append({(t["rule"], tuple(t["output"])): t["seconds"] for t in json.loads(timings.read_text())})
        written = self._data_files()
        if written != self.outputs:
            differ = sorted(str(f) for f in set(written) | set(self.outputs) if written.get(f) != self.outputs.get(f))
            raise RuntimeError(f"{self.label}: the floor wrote other files than the workflow in {differ} "
                               f"(files per folder: floor {[written.get(Path(f)) for f in differ]}, workflow "
                               f"{[self.outputs.get(Path(f)) for f in differ]}; logs in {self.logs})")
        return result

    def _bare_end(self, n_jobs: int) -> float:
        """The end-of-run gap of a cold bare Snakefile of ``n_jobs`` trivial jobs (Snakemake's own end)."""
        bare = bare_workflow(self.logs.parent / f"{self.label}-bare", n_jobs, rate_limiter=False)
        for path in (bare / "out", bare / ".snakemake"):
            shutil.rmtree(path, ignore_errors=True)
        run(snakemake_cmd("--cores", "2"), cwd=bare, log=self.logs / "bare.log")
        exited = time.time()
        ends = [json.loads(p.read_text())["endtime"] for p in (bare / ".snakemake" / "metadata").rglob("*") if p.is_file()]
        return exited - max(ends)

    def _data_files(self) -> dict[Path, int]:
        """Files written under data/ and results/ by the jobs (logs aside), counted by folder: backup names carry the time, and
        the backup store's sub-folders are named by content hashes (blobs/<sha[:2]>, snapshots/<project id>):
        counted as one."""
        counts = defaultdict(int)
        for path in [*(self.project / "data").rglob("*"), *(self.project / "results").rglob("*")]:
            # the tree's record of what it is built from is written by the run's onstart, not by a job
            if path.is_file() and "logs" not in path.parts and path.parts[-2:] != ("project", "tree.json"):
                folder = path.parent.relative_to(self.project)
                if folder.parts[:2] == ("data", "backups"):
                    folder = Path(*folder.parts[:3])
                counts[folder] += 1
        return dict(counts)

    def _metadata_jobs(self) -> tuple[dict[tuple, float], list[dict]]:
        """From Snakemake's per-output metadata records: (rule, outputs) -> wall seconds of each job, and
        the jobs (rule, start time, outputs, logs, shell command) for the floor."""
        jobs = defaultdict(lambda: {"output": []})
        folder = self.project / ".snakemake" / "metadata"
        for record in (p for p in folder.rglob("*") if p.is_file()):
            meta = json.loads(record.read_text())
            job = jobs[meta["job_hash"]]
            # the file name is the output path, urlsafe base64, split into folders when long
            job["output"].append(base64.urlsafe_b64decode("".join(record.relative_to(folder).parts)).decode())
            job.update(rule=meta["rule"], wall=meta["endtime"] - meta["starttime"], starttime=meta["starttime"],
                       log=meta["log"], shellcmd=meta["shellcmd"] or self._logged_command(meta["log"]))
        walls = {(j["rule"], tuple(sorted(j["output"]))): j["wall"] for j in jobs.values()}
        self._ends = list(jobs.values())
        return walls, [{k: j[k] for k in ("rule", "starttime", "output", "log", "shellcmd")} for j in jobs.values()]

    def _logged_command(self, logs: list[str]) -> str:
        """The command of a job run in Snakemake's process (``run:``, no shell command): its log's first line."""
        first = (self.project / logs[0]).read_text().split("\n", 1)[0]
        return first.split("command: ", 1)[1]

    def overheads(self) -> dict[str, list[float]]:
        """Per rule: workflow job wall minus the same job's floor seconds, over all runs (medians per job)."""
        by_rule = defaultdict(list)
        for key in self.job_walls[0]:
            walls = [w[key] for w in self.job_walls if key in w]
            floors = [f[key] for f in self.floor_seconds if key in f]
            if walls and floors:
                by_rule[key[0]].append(statistics.median(walls) - statistics.median(floors))
        return by_rule


def main() -> None:
    args = cli(__doc__.splitlines()[1], runs=3, quick_runs=1)
    report = Report(args, "P8")
    cases = []
    if (RAW_DIR / "SOURCES.md").exists():
        subset = ["datasets=[bao_desi_dr1,cc_moresco]"] if args.quick else []
        cases.append(("cold_real", ["--config", f"raw_dir={RAW_DIR}", *subset]))
    else:
        report.info(f"real corpus not found at {RAW_DIR} (set PBUF_RAW_DIR): real-corpus case skipped")
    if not args.quick or not cases:
        cases.append(("cold_mock", ["--config", "datasets=[mock_bao_desi_dr1,mock_cc_moresco]"] if args.quick else []))
    with Workdir(args, "p8") as work:
        for label, config in cases:
            case = Case(work, label, config)
            # pairs run A B, B A, ...: a floor runs the jobs of the last workflow run before it
            result = paired(case.workflow, case.floor, args.runs, warmup=0)
            jobs = len(case.job_walls[-1])
            report.verdict(label, result.a_wall, result.b_wall, result.ratio, TARGET, floor_name="one-process floor",
                           note=f"{jobs} jobs; {result.spread()}")
            report.verdict(f"{label}_cpu", statistics.median(r.cpu for r in result.a),
                           statistics.median(r.cpu for r in result.b), result.cpu_ratio, TARGET, unit="CPU-s",
                           floor_name="one-process floor")
            by_rule = case.overheads()
            every = [x for values in by_rule.values() for x in values]
            report.verdict(f"{label}_job_overhead", statistics.median(every), OVERHEAD_TARGET,
                           statistics.median(every) / OVERHEAD_TARGET, 1.0, floor_name="target",
                           note="median over jobs of (workflow job wall - floor step seconds); ratio = median / 0.3 s")
            gap, bare = statistics.median(case.end_gaps), statistics.median(case.bare_gaps)
            report.verdict(f"{label}_end_of_run", gap, bare, (gap - bare) / END_EXTRA_TARGET, 1.0,
                           floor_name="a bare Snakefile's",
                           note=f"the process's exit minus the last job's end, medians of {len(case.end_gaps)} runs "
                                f"(workflow {', '.join(f'{g:.2f}' for g in case.end_gaps)} s; bare "
                                f"{', '.join(f'{g:.2f}' for g in case.bare_gaps)} s); ratio = (workflow - bare) / "
                                f"{END_EXTRA_TARGET} s")
            for rule, values in sorted(by_rule.items(), key=lambda kv: -statistics.median(kv[1])):
                report.info(f"{label} {rule:22s} {len(values):3d} jobs, overhead median {statistics.median(values):.2f} s "
                            f"(min {min(values):.2f}, max {max(values):.2f})")
    report.finish()


if __name__ == "__main__":
    main()
