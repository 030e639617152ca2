"""The error type for bad user input: the CLI prints its one-line message and exits 2."""


class UserError(ValueError):
    """Bad input (config, data file, run name, ...), as one line fit for stderr."""

    exit_code = 2


class ConfigError(UserError):
    """A config problem, as one line fit for stderr."""


class DataError(UserError):
    """A data file (or a selection of it) cannot be used; the message is one line."""
