"""User-facing errors.

Anything a user can fix (bad config, missing file, malformed data, unknown model)
raises `UserError`; the CLI prints its message on one line to stderr and exits
with status 2 instead of showing a traceback. Bugs stay ordinary exceptions.
"""


class UserError(Exception):
    """An error caused by input the user controls; the message says what and how to fix it."""


class ConfigError(UserError):
    """Invalid configuration key, type or value."""


class DataError(UserError):
    """Missing, malformed or insufficient data."""


class ModelError(UserError):
    """A model that cannot be resolved, loaded or adapted."""
