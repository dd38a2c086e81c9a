"""``garden-edge`` / ``python -m edge_app``: the command line of the camera demo.

Exit codes: see ``EXIT_CODES``. Errors are one line on stderr; set ``GARDEN_DEBUG=1`` for the traceback.
"""

import argparse
import dataclasses
import json
import os
import signal
import sys

from edge_app.errors import FRAMES_LOST_EXIT, EdgeError, SourceLost

EXIT_CODES = """exit codes:
  0  done: the source ended, --max-frames or --benchmark reached, ESC / q, Ctrl-C
  1  a camera or stream was lost mid-run (the output written so far is kept)
  2  bad input: model, source or option
  3  --output could not be written whole (e.g. disk full); nothing was put there
  4  a damaged video: frames that do not decode were skipped (the warning says how many)
"""

EXAMPLES = """examples:
  garden-edge --model deeplab.tflite --source 0
  garden-edge --model deeplab.tflite --source street.mp4 --headless --output out.mp4
  garden-edge --model deeplab.tflite --source 0 --serve 0.0.0.0:8080
  garden-edge --model deeplab.tflite --source frame.jpg --benchmark 200 --threads 1 --json
  garden-edge --model separable.tflite --compare standard.tflite --source clip.mp4 --headless --output cmp.mp4
"""

MAX_THREADS = 64
MAX_SIDE = 8192  # pixels, either side of --size
MAX_TOP_K = 1000
MAX_BENCHMARK = 100_000  # frames; a benchmark keeps every frame's timings
MAX_FRAMES = 10**9
MAX_RETRIES = 10_000


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit code 2, like every other bad input."""

    def error(self, message):
        raise EdgeError(message)


def number_in_range(convert, noun, low, high, span):
    """An argparse type: ``convert(text)`` (``int`` or ``float``) from ``low`` to ``high``, else one line saying
    it is not a ``noun`` or must be ``span``."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {noun}") from None
        if not low <= value <= high:  # also False for NaN
            raise argparse.ArgumentTypeError(f"{text!r} must be {span}")
        return value

    return parse


def whole_number(low, high):
    """An argparse type: a whole number from ``low`` to ``high`` (so no NaN, fraction or overflow)."""
    return number_in_range(int, "whole number", low, high, f"from {low} to {high}")


fraction = number_in_range(float, "number", 0.0, 1.0, "between 0 and 1")  # 0 to 1 (NaN and infinity are not)


def parse_wxh(text):
    """``640x480`` -> (640, 480), each side from 1 to ``MAX_SIDE``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed size {text!r}: use WxH, e.g. 640x480") from None
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise argparse.ArgumentTypeError(f"size {text!r}: width and height must be from 1 to {MAX_SIDE}")
    return width, height


def serve_address(text):
    """``HOST:PORT`` or ``PORT`` -> (host, port), the port from 0 to 65535."""
    from edge_app.serve import parse_address

    try:
        return parse_address(text)
    except EdgeError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--serve ")) from None


def build_parser():
    p = Parser(
        prog="garden-edge",
        description="Run a TFLite segmentation or classification model live with LiteRT and OpenCV.",
        epilog=EXAMPLES + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help=".tflite file (its NAME.json sidecar adds labels, colours, MACs)")
    p.add_argument(
        "--source", default="0", help="camera index, video, image, folder of images or rtsp://... (default 0)"
    )
    p.add_argument(
        "--threads",
        type=whole_number(1, MAX_THREADS),
        metavar="N",
        default=min(4, os.cpu_count() or 1),
        help=f"LiteRT CPU threads, 1-{MAX_THREADS} (default: up to 4)",
    )
    p.add_argument("--mode", choices=("overlay", "side-by-side", "mask"), default="overlay")
    p.add_argument(
        "--size",
        type=parse_wxh,
        metavar="WxH",
        help=f"frame size, sides 1-{MAX_SIDE} (asked of a camera, applied to other sources)",
    )
    p.add_argument("--alpha", type=fraction, metavar="A", default=0.5, help="overlay opacity 0-1 (default 0.5)")
    p.add_argument(
        "--top-k",
        type=whole_number(1, MAX_TOP_K),
        metavar="K",
        default=3,
        help=f"classes shown for a classifier, 1-{MAX_TOP_K} (default 3)",
    )
    p.add_argument("--headless", action="store_true", help="no window (OpenCV headless builds cannot open one)")
    p.add_argument(
        "--output",
        metavar="FILE",
        help="write the annotated frames to a video (.mp4, .avi) or an image; "
        "it is put in place only once it is complete and plays back",
    )
    p.add_argument(
        "--benchmark",
        type=whole_number(1, MAX_BENCHMARK),
        default=0,
        metavar="N",
        help=f"time N frames, 1-{MAX_BENCHMARK} (source looped), and print median/p90",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.add_argument("--compare", metavar="OTHER.tflite", help="run a second model on the same frames, side by side")
    p.add_argument(
        "--serve",
        type=serve_address,
        metavar="HOST:PORT",
        help="serve the live overlay as MJPEG (binds 127.0.0.1 unless told)",
    )
    p.add_argument("--loop", action="store_true", help="start a video, image or folder again when it ends")
    p.add_argument(
        "--max-frames",
        type=whole_number(1, MAX_FRAMES),
        default=0,
        metavar="N",
        help=f"stop after N frames (at most {MAX_FRAMES:,})",
    )
    p.add_argument(
        "--retries",
        type=whole_number(0, MAX_RETRIES),
        default=3,
        metavar="N",
        help=f"reconnection attempts when a camera or stream drops, 0-{MAX_RETRIES} (default 3)",
    )
    return p


def options_from(args):
    """The parsed command line as :class:`edge_app.app.Options` (each option under the field of its name)."""
    from edge_app.app import Options

    given = vars(args)
    return Options(**{f.name: given[f.name] for f in dataclasses.fields(Options) if f.name in given})


def _quiet_opencv():
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass


def _stop_on_sigterm():
    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def main(argv=None):
    """Entry point of ``garden-edge``; returns the exit code."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines; the app says what failed
    try:
        args = build_parser().parse_args(argv)
        _quiet_opencv()
        _stop_on_sigterm()
        from edge_app.app import run
        from edge_app.summary import format_summary

        result = run(options_from(args))
    except EdgeError as error:
        if os.environ.get("GARDEN_DEBUG"):
            raise
        print(f"garden-edge: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("garden-edge: interrupted", file=sys.stderr)
        return 0
    print(json.dumps(result) if args.json else format_summary(result), flush=True)
    if "error" in result:
        print(f"garden-edge: {result['error']}", file=sys.stderr)
        return SourceLost.exit_code
    if "warning" in result:
        print(f"garden-edge: warning: {result['warning']}", file=sys.stderr)
        return FRAMES_LOST_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
