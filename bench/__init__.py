"""callbridge benchmarks (``python -m bench``): each measures callbridge against baselines run in the same
invocation on the same machine and reports ratios. See bench/README.md for the latest full run."""
