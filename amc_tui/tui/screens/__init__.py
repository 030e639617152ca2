"""One module per screen: runs (home), new run, live, analysis, compare, RUNLOG, GPUs."""
