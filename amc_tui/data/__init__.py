"""RadioML 2018.01A data layer: class table, file validation, selection, split, frame source,
synthetic generator. numpy + h5py only (no torch), so the CLI and TUI can use it."""
