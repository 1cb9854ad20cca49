#!/usr/bin/env python3
"""Rule validation_summary (rules/validate.smk): one table of every published dataset's validation verdicts.

Reads the validation reports of the datasets and combinations and writes the summary as JSON, text and HTML
(pbuf_data.operate.steps.summarize_validation), at the tree's paths.

  --params   {"corpus", "datasets": the published names}
  --input    the datasets' receipts
  --output   summary JSON, text and HTML
  --log      the job's log
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.steps import summarize_validation

    job.run(summarize_validation, job.tree, job.params["datasets"])


if __name__ == "__main__":
    main(run, __doc__)
