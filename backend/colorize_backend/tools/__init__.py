"""The tools around the daemon: the command line, files, batches, diagnosis, benchmarks."""
