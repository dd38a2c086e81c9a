"""What can go wrong on a device, as exceptions whose message is the one line the user sees."""

FRAMES_LOST_EXIT = 4  # a video file was damaged: the run skipped past it, finished, and says how many frames were lost


class EdgeError(Exception):
    """Bad input (missing camera, corrupt model, unreadable file, impossible option). Exit code 2."""

    exit_code = 2


class SourceLost(EdgeError):
    """A live source (camera, stream) stopped delivering frames and did not come back. Exit code 1."""

    exit_code = 1


class OutputFailed(EdgeError):
    """``--output`` could not be written whole (disk full, unplayable file); the target is untouched. Exit code 3."""

    exit_code = 3
