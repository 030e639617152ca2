"""RUNLOG.md: the file, its lock, markers and sync (`file`), one entry per run (`entry`) and one
per sweep group (`group_entry`), each rendered from the files on disk."""
