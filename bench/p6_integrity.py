#!/usr/bin/env python3
"""P6: checksums and backups vs the command-line tools on the same files.

Checksums: ``pbuf_data.core.integrity.sha256_file`` over a set of files (the Pantheon+-size mock raw files, the
derived datasets, and in full mode a 512 MiB file) vs ``sha256sum`` on the same files; target: throughput
>= 0.8 x sha256sum. Backups: ``pbuf_data.publish.backup.create_backup`` of a project tree (the real corpus and the
mock SN derived, a manifest, the configuration) vs ``tar --zstd`` of the same members; target: time <=
1.0 x. ``tar -czf`` (gzip) is measured too, with sizes, to say which compressor wins on this data.
All runs read from the page cache (one untimed warm-up pair first).

    python bench/p6_integrity.py [--quick] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PROJECT, RAW_DIR, Report, Workdir, cache_dir, cli, paired, run, timed  # noqa: E402

SHA_TARGET = 0.8
BACKUP_TARGET = 1.0


def big_file(mib: int) -> Path:
    path = cache_dir() / f"random-{mib}MiB.bin"
    if not path.exists() or path.stat().st_size != mib << 20:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            for _ in range(mib):
                fh.write(os.urandom(1 << 20))
        tmp.replace(path)
    return path


from pbuf_data.core.layout import Tree  # noqa: E402

TREE = Tree("real")


def build_tree(root: Path) -> tuple[str, list[str]]:
    """A project tree as the backup rule sees it: derived datasets, their manifest, the configuration."""
    from _data import mock_sn
    from pbuf_data.core.integrity import write_manifest
    from pbuf_data.read.derive import derive_dataset
    from pbuf_data.read.registry import load_registry

    derived = root / TREE.derived
    derived.mkdir(parents=True)
    raw, entry = mock_sn()
    derive_dataset("mock_sn_pantheon_plus", entry, raw).save(derived / "mock_sn_pantheon_plus.npz", derived / "mock_sn_pantheon_plus.json")
    if (RAW_DIR / "SOURCES.md").exists():
        for name, real in load_registry(PROJECT / "config" / "registry.yaml").items():
            derive_dataset(name, real, RAW_DIR).save(derived / f"{name}.npz", derived / f"{name}.json")
    paths = sorted(str(p.relative_to(root)) for p in derived.iterdir())
    manifest = TREE.derived_manifest
    write_manifest(paths, manifest, root=root)
    config = []
    for src in sorted((PROJECT / "config").rglob("*.y*ml")):
        rel = Path("config") / src.relative_to(PROJECT / "config")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, root / rel)
        config.append(str(rel))
    return manifest, config


def main() -> None:
    args = cli(__doc__.splitlines()[1], runs=9, quick_runs=3)
    report = Report(args, "P6")
    from _data import mock_sn
    from pbuf_data.core.integrity import sha256_file
    from pbuf_data.publish.backup import ZSTD_LEVEL, create_backup, snapshot_members

    with Workdir(args, "p6") as work:
        root = work / "project"
        manifest, config = build_tree(root)
        raw, entry = mock_sn()
        files = [raw / spec["path"] for spec in entry["files"].values()]
        files += sorted((root / TREE.derived).iterdir())
        if not args.quick:
            files.append(big_file(512))
        total = sum(p.stat().st_size for p in files)

        def ours():
            for path in files:
                sha256_file(path)

        sha = paired(lambda: timed(ours), lambda: run(["sha256sum", *files]), args.runs)
        ours_mbs, tool_mbs = total / sha.a_wall / 1e6, total / sha.b_wall / 1e6
        report.verdict("sha256_file", ours_mbs, tool_mbs, 1 / sha.ratio, SHA_TARGET, unit="MB/s", higher_is_better=True,
                       floor_name="sha256sum", note=f"{len(files)} files, {total / 1e6:.0f} MB; {sha.spread()}")

        members = snapshot_members(root, manifest, config)
        member_bytes = sum((root / m).stat().st_size for m in members)
        counter = iter(range(10**6))

        def backup():
            # a fresh store per run: the first snapshot of a store writes every blob (the full cost)
            return timed(lambda: create_backup(root, TREE, f"backups/{next(counter)}", config, keep=10))

        def tar(flag: str, suffix: str):
            return lambda: run(["tar", flag, "-cf", work / f"tar{suffix}", "-C", root, *members])

        zstd = paired(backup, tar("--zstd", ".tar.zst"), args.runs)
        gzip = paired(backup, tar("--gzip", ".tar.gz"), max(2, args.runs // 3))
        first = root / "backups" / "0"
        sizes = {
            f"create_backup (zstd level {ZSTD_LEVEL})": sum(p.stat().st_size for p in first.rglob("*") if p.is_file()),
            "tar --zstd": (work / "tar.tar.zst").stat().st_size,
            "tar --gzip": (work / "tar.tar.gz").stat().st_size,
        }
        report.verdict("create_backup", zstd.a_wall, zstd.b_wall, zstd.ratio, BACKUP_TARGET, floor_name="tar --zstd",
                       note=f"{len(members)} members, {member_bytes / 1e6:.1f} MB; {zstd.spread()}")
        report.info(f"tar --gzip: {gzip.b_wall:.3f} s (create_backup / tar --gzip = {gzip.ratio:.2f})")
        again = timed(lambda: create_backup(root, TREE, "backups/0", config, keep=10))
        report.info(f"create_backup of unchanged data into a store that has it: {again.wall:.3f} s (no new blob; "
                    f"{sum(p.stat().st_size for p in (root / 'backups' / '0' / 'snapshots').rglob('*.json'))} bytes of snapshots)")
        for label, size in sizes.items():
            report.info(f"{label:30s} {size / 1e6:8.2f} MB  (compression ratio {member_bytes / size:.2f})")
        report.info(
            f"zstd vs gzip: {zstd.b_wall:.3f} s vs {gzip.b_wall:.3f} s ({gzip.b_wall / zstd.b_wall:.1f}x faster), "
            f"size {sizes['tar --zstd'] / sizes['tar --gzip']:.3f} of gzip's"
        )
        if args.profile:
            from _common import profile_call

            profile_call(lambda: create_backup(root, TREE, "backups/profile", config, keep=10))
            profile_call(ours)
    report.finish()


if __name__ == "__main__":
    main()
