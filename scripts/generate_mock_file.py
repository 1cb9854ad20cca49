#!/usr/bin/env python3
"""Rule generate_mock_file (rules/mock.smk): one raw file of a mock survey, for the embedded default.

Draws the file of one registry role from the fiducial cosmology, with the entry's seed, in the layout of the
real release it stands in for (pbuf_data.operate.steps.mock_file): data/mock/raw/<dataset>/<file>.

  --dataset  the registry name (mock_*)
  --params   {"corpus", "entry": the registry entry, "role": the file's role, "seed", "fiducial"}
  --output   the mock raw file
  --log      the job's log
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.steps import mock_file

    p = job.params
    job.run(mock_file, job.dataset, p["entry"], p["role"], job.output[0], p["fiducial"], p["seed"])


if __name__ == "__main__":
    main(run, __doc__)
