"""Groups of runs: sweep files and their points (`sweep`), the group record on disk (`group`),
the queue's group gate (`gate`: max_parallel, Optuna ask/tell), statistics over a group
(`stats`) and matplotlib figures (`plot`). Launching members lives in `launch.groups`."""
