"""``garden-edge`` / ``python -m edge_app``: the command line of the camera demo.

Exit codes: 0 done (source ended, frame count reached, quit key, Ctrl-C); 1 a live source was
lost mid-stream; 2 bad input (model, source, option). Errors are one line on stderr; set
``GARDEN_DEBUG=1`` for the traceback.
"""

import argparse
import json
import os
import signal
import sys

from edge_app.errors import EdgeError, SourceLost

EXAMPLES = """examples:
  garden-edge --model deeplab.tflite --source 0
  garden-edge --model deeplab.tflite --source street.mp4 --headless --output out.mp4
  garden-edge --model deeplab.tflite --source 0 --serve 0.0.0.0:8080
  garden-edge --model deeplab.tflite --source frame.jpg --benchmark 200 --threads 1 --json
  garden-edge --model separable.tflite --compare standard.tflite --source clip.mp4 --headless --output cmp.mp4
"""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit code 2, like every other bad input."""

    def error(self, message):
        raise EdgeError(f"{self.prog}: {message}")


def parse_wxh(text):
    """``640x480`` -> (640, 480)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed size {text!r}: use WxH, e.g. 640x480") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"malformed size {text!r}: width and height must be positive")
    return width, height


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def build_parser():
    p = Parser(
        prog="garden-edge",
        description="Run a TFLite segmentation or classification model live with LiteRT and OpenCV.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help=".tflite file (its NAME.json sidecar adds labels, colours, MACs)")
    p.add_argument("--source", default="0", help="camera index, video, image, folder of images or rtsp://... (default 0)")
    p.add_argument("--threads", type=positive_int, default=min(4, os.cpu_count() or 1), help="LiteRT CPU threads")
    p.add_argument("--mode", choices=("overlay", "side-by-side", "mask"), default="overlay")
    p.add_argument("--size", type=parse_wxh, help="frame size WxH (asked of a camera, applied to other sources)")
    p.add_argument("--alpha", type=fraction, default=0.5, help="overlay opacity 0-1 (default 0.5)")
    p.add_argument("--top-k", type=positive_int, default=3, help="classes shown for a classifier (default 3)")
    p.add_argument("--headless", action="store_true", help="no window (OpenCV headless builds cannot open one)")
    p.add_argument("--output", help="write the annotated frames to a video (.mp4, .avi) or an image")
    p.add_argument("--benchmark", type=positive_int, metavar="N", help="time N frames (source looped) and print median/p90")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.add_argument("--compare", metavar="OTHER.tflite", help="run a second model on the same frames, side by side")
    p.add_argument("--serve", metavar="HOST:PORT", help="serve the live overlay as MJPEG (binds 127.0.0.1 unless told)")
    p.add_argument("--loop", action="store_true", help="start a video, image or folder again when it ends")
    p.add_argument("--max-frames", type=positive_int, default=0, help="stop after this many frames")
    p.add_argument("--retries", type=int, default=3, help="reconnection attempts when a camera or stream drops")
    return p


def options_from(args):
    from edge_app.app import Options
    from edge_app.serve import parse_address

    return Options(
        model=args.model,
        source=args.source,
        threads=args.threads,
        mode=args.mode,
        size=args.size,
        headless=args.headless,
        output=args.output,
        benchmark=args.benchmark or 0,
        compare=args.compare,
        serve=parse_address(args.serve) if args.serve else None,
        alpha=args.alpha,
        top_k=args.top_k,
        loop=args.loop,
        max_frames=args.max_frames,
        retries=max(0, args.retries),
    )


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
        from edge_app.app import format_summary, run

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
