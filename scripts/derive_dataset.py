#!/usr/bin/env python3
"""Rule derive_dataset (rules/derive.smk): one dataset's raw release files -> its published dataset.

Checks each raw file against its pin, reads it with the entry's format, derives the standard dataset into the
tree's staging folder, validates it and, only if validation passed, publishes it by atomic renames
(pbuf_data.operate.steps.prepare). The validation report is written whatever happens; the receipt only on success.

  --dataset  the registry name
  --params   {"corpus", "settings": {"entry", "thresholds", "max_bytes", "code", "missing", "fiducial"}}
  --input    the raw files, one per registry role (in any order: matched to their role by path)
  --output   the receipt (<tree>/state/<dataset>.json)
  --log      the job's log, then the validation and publication logs
"""

from pbuf_data.operate.job import main, raw_roles


def run(job):
    from pbuf_data.operate.steps import prepare

    s = job.params["settings"]
    phase_logs = dict(zip(("validate", "publish"), job.log[1:]))
    job.run(prepare, job.tree, job.dataset, s["entry"], raw_roles(job.dataset, s["entry"], job.input), phase_logs,
            job.output[0], max_bytes=s["max_bytes"], code=s["code"], expected_points=s["entry"].get("expected_points"),
            thresholds=s["thresholds"], missing=s["missing"], fiducial=s.get("fiducial"))


if __name__ == "__main__":
    main(run, __doc__)
