"""Notifications: a workspace's `amc-tui.toml` `[notify]` settings (`settings`), what is
notifiable about a run or a sweep group now (`observe`, `message`), the once-only record
under runs/.amc-tui/notify/ (`ledger`) and sending through apprise (`send`). Imports run/
and sweeps/, nothing above them; the app's bell is tui/alerts.py's."""
