#!/usr/bin/env python3
"""Rule verify (rules/integrity.smk): every published file and backup checked against its manifest.

What the cron command `pbuf-data verify` does (pbuf_data.publish.verify): the tree's files against its manifest, the
backups against theirs, and the raw files against their registry pins; exits non-zero on any problem.

  --params   {"corpus", "backup_dir", "raw_dir": null for the mock corpus}
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.cli import main as pbuf_data

    p = job.params
    raw = [] if p["raw_dir"] is None else ["--raw-dir", p["raw_dir"]]
    status = pbuf_data(["verify", "--corpus", p["corpus"], "--backup-dir", p["backup_dir"], *raw])
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    main(run, __doc__)
