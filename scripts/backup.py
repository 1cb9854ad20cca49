#!/usr/bin/env python3
"""Rule backup (rules/integrity.smk): a snapshot of the tree in the backup store, made when its manifest changed.

Stores the published files listed in the manifest, with the manifest and the configuration, as a snapshot of
content-addressed blobs (only new contents are written), keeps the newest `keep` snapshots and records what it
stored (pbuf_data.operate.steps.backup).

  --params   {"corpus", "backup_dir", "keep"}
  --input    the manifest, then the configuration files
  --output   the backup record
  --log      the job's log
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.steps import backup

    p = job.params
    job.run(backup, job.tree, job.input[1:], p["backup_dir"], p["keep"])


if __name__ == "__main__":
    main(run, __doc__)
