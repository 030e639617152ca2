"""`amc-tui serve`: the app in a browser behind a token (`command`: the command and its
checks; `server`: the textual-serve server with the token gate)."""
