#!/usr/bin/env python3
"""Rule export_dataset (rules/export.smk): a published dataset's fit-ready exports.

Writes the Cobaya likelihood YAML (and, where Cobaya's own likelihood reads the release, its native files), the
SACC file and the exports' receipt with every file's sha256, evaluated at the fiducial cosmology
(pbuf_data.operate.steps.export); the files (<tree>/exports/<dataset>.*) are replaced one by one, atomically.

  --dataset  the dataset or combination
  --params   {"corpus", "fiducial": the fiducial cosmology}
  --input    the dataset's receipt
  --output   the exports' receipt (<tree>/state/<dataset>.exports.json)
  --log      the job's log
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.steps import export

    job.run(export, job.tree, job.dataset, job.params["fiducial"], job.output[0])


if __name__ == "__main__":
    main(run, __doc__)
