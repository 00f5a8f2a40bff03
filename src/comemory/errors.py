"""Errors a user can act on; the CLI prints their message without a traceback."""


class ComemoryError(Exception):
    """Base class: the message names the file or key and says what is wrong."""


class ConfigError(ComemoryError):
    """A preset, YAML file or override the configuration cannot take."""


class DataError(ComemoryError):
    """A dataset folder, frame, label file or flow file that cannot be used."""


class CheckpointError(ComemoryError):
    """A checkpoint that is missing, corrupt, or does not fit the data."""


class TrainingError(ComemoryError):
    """Training cannot go on (a loss became NaN or infinite); the last checkpoint stays."""


class FolderInUse(ComemoryError):
    """Another comemory process is writing the same run or output folder."""


class Interrupted(ComemoryError):
    """The user stopped a command (Ctrl-C); the message says what was kept and how to go on."""
