"""``garden-edge`` / ``python -m edge_app``: the command line of the camera demo.

Exit codes: see ``EXIT_CODES``. Errors are one line on stderr; set ``GARDEN_DEBUG=1`` for the traceback.
"""

import argparse
import dataclasses
import json
import math
import os
import signal
import sys

from edge_app.errors import FRAMES_LOST_EXIT, EdgeError, SourceLost
from edge_app.runtime import RUNTIMES

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
  garden-edge --model deeplab.tflite --source clip.mp4 --benchmark 200 --sequential   # per-stage timing
  garden-edge --model selfie.tflite --source 0 --mode blur --threshold 0.6
  garden-edge --model classifier.tflite --labels labels.txt --mean 127.5 --std 127.5 --source photo.jpg --json
  garden-edge --model separable.tflite --compare standard.tflite --source clip.mp4 --headless --output cmp.mp4
"""

MAX_THREADS = 64
MAX_SIDE = 8192  # pixels, either side of --size
MAX_TOP_K = 1000
MAX_BENCHMARK = 100_000  # frames; a benchmark keeps every frame's timings
MAX_FRAMES = 10**9
MAX_RETRIES = 10_000
MOST_CLIENTS = 1000  # the highest --max-clients: --serve connections at once, each a thread


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


def parse_mode(text):
    """``overlay``, ``side-by-side``, ``mask``, ``blur`` or ``replace=IMAGE``."""
    from edge_app.render import MODES

    mode = text.split("=", 1)[0]
    if mode not in MODES or (mode == "replace") != ("=" in text) or text.endswith("="):
        raise argparse.ArgumentTypeError(f"{text!r}: use one of overlay, side-by-side, mask, blur, replace=IMAGE")
    return text


def pixel_values(text):
    """``127.5`` or ``123.7,116.3,103.5`` -> a tuple of finite numbers (0-255 units)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or comma-separated numbers") from None
    if not all(math.isfinite(v) for v in values) or len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"{text!r}: one or three finite numbers")
    return values


def serve_address(text):
    """``HOST:PORT`` or ``PORT`` -> (host, port), the port from 0 to 65535."""
    from edge_app.serve import parse_address

    try:
        return parse_address(text)
    except EdgeError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--serve ")) from None


def build_parser():
    from edge_app.serve import MAX_CLIENTS

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
    threads = min(4, cores())
    add_count(p, "--threads", 1, MAX_THREADS, threads, "LiteRT CPU threads, {range} (default: up to 4)")
    p.add_argument(
        "--mode",
        type=parse_mode,
        default="overlay",
        metavar="MODE",
        help="overlay (default), side-by-side, mask, blur (background blurred) or replace=IMAGE (background replaced)",
    )
    p.add_argument(
        "--threshold",
        type=fraction,
        metavar="T",
        default=0.5,
        help="foreground probability of a binary (1xHxWx1) model, 0-1 (default 0.5)",
    )
    p.add_argument("--labels", metavar="FILE", help="class names, one a line (default: packed in the file, sidecar)")
    for flag, letter, otherwise in (("--mean", "M", "0"), ("--std", "S", "255: pixels in [0, 1]")):
        what = f"input {flag[2:]} in 0-255 units, one or three values"
        p.add_argument(
            flag, type=pixel_values, metavar=letter, help=f"{what} (default: metadata, sidecar, else {otherwise})"
        )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help="LiteRT API: compiled (CompiledModel, the default where installed LiteRT has it) or interpreter",
    )
    p.add_argument(
        "--size",
        type=parse_wxh,
        metavar="WxH",
        help=f"frame size, sides 1-{MAX_SIDE} (asked of a camera, applied to other sources)",
    )
    p.add_argument("--alpha", type=fraction, metavar="A", default=0.5, help="overlay opacity 0-1 (default 0.5)")
    add_count(p, "--top-k", 1, MAX_TOP_K, 3, "classes shown for a classifier, {range} (default 3)", metavar="K")
    p.add_argument("--headless", action="store_true", help="no window (OpenCV headless builds cannot open one)")
    p.add_argument(
        "--output",
        metavar="FILE",
        help="write the annotated frames to a video (.mp4, .avi) or an image; "
        "it is put in place only once it is complete and plays back",
    )
    add_count(p, "--benchmark", 1, MAX_BENCHMARK, 0, "time N frames, {range} (source looped), and print median/p90")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.add_argument(
        "--sequential",
        action="store_true",
        help="one frame at a time through every stage, on one thread (each stage's time its own); "
        "default: the stages pipelined, overlapping inference",
    )
    p.add_argument("--compare", metavar="OTHER.tflite", help="run a second model on the same frames, side by side")
    p.add_argument(
        "--serve",
        type=serve_address,
        metavar="HOST:PORT",
        help="serve the live overlay as MJPEG (binds 127.0.0.1 unless told; elsewhere a token is asked for)",
    )
    p.add_argument(
        "--token",
        help="the --serve access token (16-128 letters, digits, - or _; default: a random one off loopback)",
    )
    p.add_argument("--no-auth", action="store_true", help="serve off loopback without a token: anyone may watch")
    add_count(p, "--max-clients", 1, MOST_CLIENTS, MAX_CLIENTS, "--serve connections at once, {range} (default 32)")
    p.add_argument("--loop", action="store_true", help="start a video, image or folder again when it ends")
    add_count(p, "--max-frames", 1, MAX_FRAMES, 0, "stop after N frames, {range}")
    add_count(p, "--retries", 0, MAX_RETRIES, 3, "reconnection attempts when a stream drops, {range} (default 3)")
    return p


def add_count(parser, flag, low, high, default, help_text, metavar="N"):
    """A whole-number option in ``[low, high]``; ``{range}`` in ``help_text`` becomes ``low-high``."""
    span = f"{low:,}-{high:,}"
    parser.add_argument(
        flag, type=whole_number(low, high), default=default, metavar=metavar, help=help_text.format(range=span)
    )


def cores():
    """The CPU cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_serving(given, err=None):
    """--token and --no-auth need --serve and not each other; --no-auth off loopback says what it means."""
    from edge_app.serve import check_token, is_loopback

    for flag in ("token", "no_auth"):
        if given.get(flag) and not given.get("serve"):
            raise EdgeError(f"--{flag.replace('_', '-')} needs --serve HOST:PORT")
    if given.get("token") and given.get("no_auth"):
        raise EdgeError("--token and --no-auth: give one or the other")
    if given.get("token"):
        check_token(given["token"])
    if given.get("no_auth") and not is_loopback(given["serve"][0]):
        host, port = given["serve"]
        line = f"garden-edge: warning: --no-auth: anyone who reaches {host}:{port} sees the camera"
        print(line, file=err or sys.stderr)


def capped_threads(threads, err=None):
    """``threads``, lowered to the cores there are (more only compete for them), said in one line."""
    available = cores()
    if threads > available:
        line = f"garden-edge: note: --threads {threads} lowered to {available}, the CPU cores there are"
        print(line, file=err or sys.stderr)
    return min(threads, available)


def options_from(args):
    """The parsed command line as :class:`edge_app.app.Options` (each option under the field of its name)."""
    from edge_app.app import Options

    given = dict(vars(args))
    check_serving(given)
    given["threads"] = capped_threads(given.get("threads", 1))
    given["mode"], _, background = given.get("mode", "overlay").partition("=")
    given["background"] = background or None
    if given.get("std") and not all(v > 0 for v in given["std"]):
        raise EdgeError(f"--std {','.join(map(str, given['std']))}: must be positive")
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
