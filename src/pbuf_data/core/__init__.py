"""The common base every stage stands on: errors, the paths of a project and its result trees (layout), atomic
writes, sha256 digests and manifests (integrity), the archive reader, logs and provenance, the survey-sample
vocabulary. Imports nothing of the stages above."""
