#!/usr/bin/env python3
"""Rule retrieve_raw_file (rules/retrieve.smk): one raw release file missing from the raw folder, downloaded.

Fetches the file from its registry URL into data/raw_cache/<dataset>/<file> and keeps it only if its sha256 is
the registry's pin and its size within the limit (pbuf_data.operate.steps.retrieve); a failure names the file, the URL
and where to put the file by hand.

  --dataset  the registry name
  --params   {"corpus", "spec": {"path", "url", "sha256", "mirror_hint", "max_bytes"}}
  --output   the cached raw file
  --log      the job's log
"""

from pbuf_data.operate.job import main


def run(job):
    from pbuf_data.operate.steps import retrieve

    s = job.params["spec"]
    job.run(retrieve, job.dataset, s["path"], s["url"], s["sha256"], job.output[0], s["mirror_hint"], s["max_bytes"])


if __name__ == "__main__":
    main(run, __doc__)
