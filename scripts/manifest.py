#!/usr/bin/env python3
"""Rule manifest (rules/integrity.smk): the tree's sha256sum -c compatible manifest of every published file.

Hashes what the datasets, combinations, exports and summary published and writes the manifest atomically
(pbuf_data.operate.steps.manifest).

  --params   {"corpus"}
  --input    the receipts, the exports' receipts and the summary
  --output   the manifest (<tree>/manifests/derived.sha256)
  --log      the job's log
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.steps import manifest

    job.run(manifest, job.tree)  # its output is the tree's manifest


if __name__ == "__main__":
    main(run, __doc__)
