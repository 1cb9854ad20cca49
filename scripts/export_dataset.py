#!/usr/bin/env python3
"""Rule export_dataset (rules/export.smk): what leaves a published dataset, from one read of it.

For fitters: the Cobaya likelihood YAML (and, where Cobaya's own likelihood reads the release, its native files) and
the SACC file, evaluated at the fiducial cosmology, with the exports' receipt (every file's sha256); the files
(<tree>/exports/<dataset>.*) are replaced one by one, atomically. For the Snakemake report: the observable against
redshift with the fiducial model and pulls, the correlation matrix, the validation and provenance pages and the
dataset's JSON document (pbuf_data.operate.steps.export).

  --dataset  the dataset or combination
  --params   {"corpus", "fiducial": the fiducial cosmology}
  --input    the dataset's receipt
  --output   the exports' receipt (<tree>/state/<dataset>.exports.json), observable PNG, correlation PNG,
             validation HTML, provenance HTML, document JSON (in this order)
  --log      the job's log
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.steps import export

    job.run(export, job.tree, job.dataset, job.params["fiducial"], *job.output[:6])


if __name__ == "__main__":
    main(run, __doc__)
