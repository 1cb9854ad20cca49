"""Operating the workflow: each rule's step (steps) and how a script runs it (job), the project and its
configuration, the Python API, the command line, status, pruning, health and certification, the verdict of a
run and the report's pages. The top stage: imports any stage below, and none imports it."""
