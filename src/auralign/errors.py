"""The user-facing error types. The CLI prints them as one line and exits non-zero, without a traceback."""


class AuralignError(Exception):
    """A problem with the user's input (file, config, data), explained in the message."""

    exit_code = 2


class ConfigError(AuralignError):
    """A config file that does not validate: the message names the file and the key."""


class DataError(AuralignError):
    """Malformed data (CSV, JSONL, manifest): the message names the file and the line."""
