"""Shared helpers of the benchmark scripts: timing, A/B pairing, verdict lines, temporary copies.

Every benchmark compares the project (A) with a baseline (B) measured in the same
run, alternating A B A B ... (B A on every other pair) so that drift of a shared
machine hits both; the ratio quoted is the median of the per-pair ratios A/B.
Whole processes are timed from outside with ``time.perf_counter`` around
``subprocess.Popen`` and reaped with ``os.wait4``, whose ``ru_maxrss`` is the
peak resident memory of that process (Linux: kB).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PY = sys.executable
PROJECT = Path(__file__).resolve().parents[1]
RAW_DIR = Path(os.environ.get("PBUF_RAW_DIR", PROJECT.parent / "shared" / "data" / "raw")).resolve()
# what a temporary copy of the workflow needs (as tests/conftest.py copies it)
WORKFLOW_FILES = ["Snakefile", "config", "rules", "scripts", "profiles", "envs", "src"]
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
# Both sides run with Python's default bytecode caching, as a user's shell has it. Some machines (and
# container images) set PYTHONDONTWRITEBYTECODE=1; then every job process of a workflow compiles the
# package's modules from source again (0.1 CPU-s per job here), which a one-process floor pays once.
# The figures measured with it set are given in bench/RESULTS.md.
BYTECODE_SETTING = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


# -- command line ---------------------------------------------------------------


def cli(description: str, *, runs: int, quick_runs: int, extra=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (CI: checks the benchmark still works)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--runs", type=int, help=f"timed A/B pairs (default {runs}, --quick {quick_runs})")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the project side")
    parser.add_argument("--json", help="append the results as JSON lines to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    if extra:
        extra(parser)
    args = parser.parse_args()
    if args.runs is None:
        args.runs = quick_runs if args.quick else runs
    return args


# -- processes --------------------------------------------------------------------


@dataclass
class Run:
    wall: float  # seconds
    maxrss_kb: int  # peak resident set of the process, kB
    rc: int
    cpu: float = float("nan")  # user + system seconds of the process and the children it waited for


def run(cmd, *, cwd=None, env=None, log=None, timeout: float | None = None, check: bool = True) -> Run:
    """Run ``cmd`` (a list) to completion; wall time, peak RSS (wait4) and exit code.

    Output goes to ``log`` (a path, appended) or is discarded.
    """
    out = open(log, "ab") if log else subprocess.DEVNULL
    argv = [str(c) for c in cmd]
    rss_file = None
    if GNU_TIME:
        # a small C parent: wait4 in this (possibly large) Python process would report the peak of the
        # memory it shared with the child before exec, not the child's own peak
        fd, rss_file = tempfile.mkstemp(prefix="pbuf-bench-rss-")
        os.close(fd)
        argv = [GNU_TIME, "-q", "-f", "%M", "-o", rss_file, *argv]
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL)) if timeout else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log:
            out.close()
    maxrss = usage.ru_maxrss
    if rss_file:
        try:
            lines = Path(rss_file).read_text().split()
            maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else maxrss
        finally:
            os.unlink(rss_file)
    result = Run(wall, maxrss, proc.returncode, usage.ru_utime + usage.ru_stime)
    if check and result.rc != 0:
        hint = f"; output in {log}" if log else ""
        raise RuntimeError(f"command failed (exit {result.rc}): {' '.join(map(str, cmd))[:300]}{hint}")
    return result


@dataclass
class Pairing:
    a: list = field(default_factory=list)  # Run of the project side
    b: list = field(default_factory=list)  # Run of the baseline

    @property
    def ratios(self) -> list[float]:
        return [ra.wall / rb.wall for ra, rb in zip(self.a, self.b)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def a_wall(self) -> float:
        return statistics.median(r.wall for r in self.a)

    @property
    def b_wall(self) -> float:
        return statistics.median(r.wall for r in self.b)

    @property
    def a_rss_mb(self) -> float:
        return max(r.maxrss_kb for r in self.a) / 1024

    @property
    def b_rss_mb(self) -> float:
        return max(r.maxrss_kb for r in self.b) / 1024

    @property
    def cpu_ratio(self) -> float:
        """Median ratio of CPU seconds (user + system): less sensitive than wall time to other load."""
        return statistics.median(ra.cpu / rb.cpu if rb.cpu > 0 else float("nan") for ra, rb in zip(self.a, self.b))

    def spread(self) -> str:
        rs = self.ratios
        text = (
            f"A {min(r.wall for r in self.a):.3g}-{max(r.wall for r in self.a):.3g} s, "
            f"B {min(r.wall for r in self.b):.3g}-{max(r.wall for r in self.b):.3g} s, "
            f"pair ratios {min(rs):.2f}-{max(rs):.2f} over {len(rs)} pairs"
        )
        cpu = self.cpu_ratio
        return text + (f"; CPU-time ratio {cpu:.2f}" if cpu == cpu else "")


def paired(a, b, runs: int, warmup: int = 1) -> Pairing:
    """Alternate ``a()`` and ``b()`` (callables returning :class:`Run`); ``warmup`` untimed pairs first."""
    for _ in range(warmup):
        a()
        b()
    pairing = Pairing()
    for i in range(runs):
        if i % 2 == 0:
            ra = a()
            rb = b()
        else:
            rb = b()
            ra = a()
        pairing.a.append(ra)
        pairing.b.append(rb)
    return pairing


def timed(fn) -> Run:
    """In-process timing of ``fn()`` as a :class:`Run` (peak RSS of this process so far)."""
    import resource

    before = time.process_time()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    return Run(wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 0, time.process_time() - before)


# -- verdicts -------------------------------------------------------------------------


def load_average() -> float:
    """The machine's 1-minute load average (runnable processes; 2 on 2 busy cores), as measured beside a figure."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


class Report:
    """Collects verdict lines; ``finish()`` exits 0 unless --strict and a target was missed.

    Every figure is printed with the load average it was measured under (at its end). In --quick mode (CI) the
    sizes are too small for a verdict that agrees with the full-size one (fixed costs dominate there): each
    figure is printed as having run, with no PASS or MISS, and --strict cannot fail on it."""

    def __init__(self, args, target_id: str):
        self.args, self.target_id, self.results, self.missed = args, target_id, [], []
        mode = "quick" if args.quick else "full"
        print(f"# {target_id} ({mode} mode, {args.runs} pairs) on {machine_line()}; load {load_average():.2f}", flush=True)

    def verdict(self, name: str, value: float, floor: float, ratio: float, target: float, *, unit: str = "s",
                higher_is_better: bool = False, floor_name: str = "floor", note: str = "") -> bool:
        ok = ratio >= target if higher_is_better else ratio <= target
        op = ">=" if higher_is_better else "<="
        load = load_average()
        outcome = "ran (quick size: no verdict)" if self.args.quick else ("PASS" if ok else "MISS")
        text = (
            f"{self.target_id} {name}: {_fmt(value)} {unit} vs {floor_name} {_fmt(floor)} {unit} -> ratio {ratio:.2f} "
            f"(target {op} {target:g}) {outcome}; load {load:.2f}"
        )
        print(text + (f"  [{note}]" if note else ""), flush=True)
        self.results.append(
            {"target": self.target_id, "name": name, "value": value, "floor": floor, "unit": unit, "ratio": ratio,
             "goal": f"{op} {target:g}", "pass": None if self.args.quick else ok, "note": note,
             "quick": self.args.quick, "load": load}
        )
        if not ok and not self.args.quick:
            self.missed.append(name)
        return ok

    def info(self, text: str) -> None:
        print(f"    {text}", flush=True)

    def finish(self) -> None:
        if self.args.json:
            with open(self.args.json, "a") as fh:
                for item in self.results:
                    fh.write(json.dumps(item) + "\n")
        if self.missed:
            print(f"# {self.target_id}: missed {self.missed}" + (" (--strict: exit 1)" if self.args.strict else ""), flush=True)
            if self.args.strict:
                sys.exit(1)


def _fmt(x: float) -> str:
    return f"{x:#.3g}".rstrip(".") if abs(x) < 1000 else f"{x:.0f}"


def machine_line() -> str:
    bytecode = f" (PYTHONDONTWRITEBYTECODE={BYTECODE_SETTING} of this shell not passed on)" if BYTECODE_SETTING else ""
    return f"{os.cpu_count()} cores, {memory_gib():.0f} GiB, {cpu_model()}, Python {platform.python_version()}{bytecode}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


# -- folders and copies -------------------------------------------------------------------


class Workdir:
    """A temporary folder removed at exit unless --keep."""

    def __init__(self, args, prefix: str):
        self.path = Path(tempfile.mkdtemp(prefix=f"pbuf-bench-{prefix}-"))
        self.keep = args.keep

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc):
        if self.keep:
            print(f"# kept {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def cache_dir() -> Path:
    """Generated inputs reused between runs (large files are written once)."""
    path = Path(os.environ.get("PBUF_BENCH_CACHE", Path(tempfile.gettempdir()) / "pbuf-bench-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def copy_workflow(dest: Path) -> Path:
    """A temporary copy of the workflow (like tests/conftest.py): runs there never touch the project."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = PROJECT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def snakemake_cmd(*args) -> list[str]:
    # the interpreter itself, not a launcher shim, for the project and the baseline alike
    return [PY, "-m", "snakemake", *map(str, args)]


def bare_workflow(dest: Path, n_jobs: int, shell: str = "touch {output}", rate_limiter: bool = True) -> Path:
    """A bare Snakefile with ``n_jobs`` jobs: n_jobs - 1 independent jobs feeding a target rule; without
    ``rate_limiter``, its onstart takes Snakemake's job-rate limiter away, as the workflow's local runs do."""
    dest.mkdir(parents=True, exist_ok=True)
    onstart = "" if rate_limiter else "onstart:\n    workflow.scheduler.job_rate_limiter = None\n\n\n"
    (dest / "Snakefile").write_text(
        onstart
        + f"N = {n_jobs}\n\n\n"
        "rule all:\n"
        "    input:\n"
        "        expand(\"out/{i}.txt\", i=range(N - 1)),\n\n\n"
        "rule make:\n"
        "    output:\n"
        "        \"out/{i}.txt\",\n"
        "    shell:\n"
        f"        {json.dumps(shell)}\n"
    )
    return dest


def count_jobs(workdir: Path, *args, env=None) -> int:
    """Jobs a run would execute, from Snakemake's dry-run job-stats table ('total N')."""
    out = subprocess.run(snakemake_cmd("-n", "--cores", "2", *args), cwd=workdir, env=env, capture_output=True, text=True)
    text = out.stdout + out.stderr
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "total" and parts[1].isdigit():
            return int(parts[1])
    if "Nothing to be done" in text:
        return 0
    raise RuntimeError(f"could not count jobs (exit {out.returncode}):\n{text[-2000:]}")


def file_digest(paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def profile_call(fn, top: int = 18) -> None:
    """Print the top of a cProfile of ``fn()`` by cumulative and by internal time."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.runcall(fn)
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(top)
        print(f"---- cProfile sorted by {key}")
        print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[:6000])


def as_dict(obj) -> dict:
    return asdict(obj)


def profile_snakemake(workdir: Path, *args, top: int = 25, pattern: str = r"Snakefile|\.smk|pbuf_data") -> None:
    """cProfile of one Snakemake invocation in ``workdir``: the top by cumulative time, then the
    workflow's own code (Snakefile, rules, pbuf_data) by cumulative time."""
    import io
    import pstats

    fd, out = tempfile.mkstemp(prefix="pbuf-bench-prof-", suffix=".prof")
    os.close(fd)
    try:
        run([PY, "-m", "cProfile", "-o", out, "-m", "snakemake", *map(str, args)], cwd=workdir)
        for title, restriction in (("top by cumulative time", (top,)), ("workflow code", (pattern, top))):
            buf = io.StringIO()
            pstats.Stats(out, stream=buf).sort_stats("cumulative").print_stats(*restriction)
            lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
            start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
            print(f"---- cProfile of snakemake {' '.join(map(str, args))}: {title}")
            print("\n".join(ln[:220] for ln in lines[start:]))
    finally:
        os.unlink(out)
