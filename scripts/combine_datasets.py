#!/usr/bin/env python3
"""Rule combine_datasets (rules/export.smk): a combination of published datasets, joined and published.

Joins the published members of a configured combination (config "combinations"), refusing members that overlap
or supersede one another, validates the joined dataset and publishes it as a dataset of its own
(pbuf_data.operate.steps.prepare_combination).

  --dataset  the combination's name
  --params   {"corpus", "spec": the combination, "overlaps", "thresholds"}
  --input    the members' receipts
  --output   the combination's receipt
  --log      the validation and publication logs
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.steps import prepare_combination

    p = job.params
    phase_logs = dict(zip(("validate", "publish"), job.log))
    job.run(prepare_combination, job.tree, job.dataset, p["spec"], p["overlaps"], phase_logs, job.output[0],
            thresholds=p["thresholds"])


if __name__ == "__main__":
    main(run, __doc__)
