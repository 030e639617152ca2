"""One run on disk: its directory and status (`rundir`), event stream (`events`), the lock its
trainer holds (`runlock`), what a user's reference names (`refs`), rebuilding a damaged status
(`repair`) and the pure analysis of its exports (`analysis`). Imports nothing above the base."""
