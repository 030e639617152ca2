"""Notifications: a workspace's `amc-tui.toml` `[notify]` settings (`settings`), what is
notifiable about a run or a sweep group now (`observe`, `message`), the once-only record
under runs/.amc-tui/notify/ (`ledger`), sending through apprise (`send`) and what the app
rings its bell for (`session`). Imports run/ and sweeps/, nothing above them."""
