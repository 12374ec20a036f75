"""The one exception type that the CLI turns into a message and exit code 2."""


class PtlabError(Exception):
    """Bad input from the user: a message that names the key and the fix."""


class ConfigError(PtlabError):
    """A config value, name or file that ptlab cannot use."""
