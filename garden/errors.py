"""Errors a user can cause. The CLI prints their message in one line and exits with code 2."""


class GardenError(Exception):
    """Bad input (a missing file, a malformed size, an impossible option): say what and where."""


class UnreadableFile(GardenError):
    """One data file that cannot be decoded (training skips it unless told ``--strict-data``)."""

    def __init__(self, path, message):
        super().__init__(message)
        self.path = path


class UsageError(GardenError):
    """A problem with the command line itself."""
