"""One module per screen: runs (home), new run, live, analysis, compare, RUNLOG, GPUs, groups,
plus the modal dialogs and the screen bases."""
