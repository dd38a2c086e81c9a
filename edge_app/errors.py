"""What can go wrong on a device, as exceptions whose message is the one line the user sees."""


class EdgeError(Exception):
    """Bad input (missing camera, corrupt model, unreadable file, impossible option). Exit code 2."""

    exit_code = 2


class SourceLost(EdgeError):
    """A live source (camera, stream) stopped delivering frames and did not come back. Exit code 1."""

    exit_code = 1
