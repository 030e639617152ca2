"""Run management: create a run (`create`), then start, watch and end its trainer process
(`supervise`; `stop` also reaches Slurm jobs, `slurm_runs`) as queue passes decide (`queue`), with a detached worker (`worker`) keeping the
queue going when no amc-tui process is open, a sweep group's members created, stopped and resumed
(`groups`, with `group_gate` deciding what the queue may start); `keeper` makes sure one exists whenever runs
want one (`keep_queue_going`: every command and the app call it).

Every transition goes through files (status.json, events.jsonl, RUNLOG.md) under the
workspace's queue lock, so the TUI, `amc-tui run`, `amc-tui queue` and the detached worker
can all be alive at once and no run starts twice. Trainers run in their own session and
process group: they outlive the terminal, the TUI and an SSH hang-up.
"""
