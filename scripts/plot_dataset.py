#!/usr/bin/env python3
"""Rule plot_dataset (rules/report.smk): a published dataset's figures and pages for the Snakemake report.

Draws the observable against redshift with the fiducial model and pulls, and the correlation matrix; writes the
validation and provenance pages and the dataset's JSON document (pbuf_data.operate.steps.plots).

  --dataset  the dataset or combination
  --params   {"corpus", "fiducial": the fiducial cosmology}
  --input    the dataset's receipt
  --output   observable PNG, correlation PNG, validation HTML, provenance HTML, document JSON (in this order)
  --log      the job's log
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.steps import plots

    job.run(plots, job.tree, job.dataset, job.params["fiducial"], *job.output[:5])


if __name__ == "__main__":
    main(run, __doc__)
