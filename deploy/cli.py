"""``garden export`` and ``garden bench separable``.

Number options take the ranges the Python API checks (``EXPORT_LIMITS``, ``OPTIMIZE_LIMITS``,
``BENCH_LIMITS``); options left out are not passed on, so the API's defaults apply and an option
given where it means nothing is refused instead of ignored.
"""

from deploy.export import EXPORT_LIMITS, OUTPUT_KINDS
from deploy.optimize import DEFAULT_QUANT, OPTIMIZE_LIMITS, TECHNIQUES
from deploy.quantization import CALIBRATED_QUANTS, IO_DTYPES, QUANTS
from deploy.separable import BENCH_LIMITS
from garden.cli import add_model_options, model_options
from garden.console import note, print_json
from garden.errors import UsageError

EXPORT_SETTINGS = (
    "format",
    "quant",
    "input_size",
    "calib",
    "check_data",
    "max_drop",
    "out",
    "name",
    "output",
    "io_dtype",
    "calib_count",
    "check_count",
    "input_scale",
    "input_mean",
    "input_std",
    "model_options",
)


COMMANDS = {
    "export": "quantize and export a model to TFLite or ONNX, checked and measured",
    "bench": "benchmarks",
}


def add_commands(commands):
    add_export(commands)
    add_bench(commands)


def add_export(commands):
    limit = EXPORT_LIMITS
    p = commands.add_parser("export", help=COMMANDS["export"])
    p.add_argument("model", help="a registered model name or a .keras file (any Keras model)")
    p.add_argument("--format", default="tflite", choices=["tflite", "onnx"])
    p.add_argument(
        "--quant",
        choices=QUANTS,
        help="quantization (default fp32; with --optimize: int8 for qat and cluster, fp32 for prune)",
    )
    p.add_argument(
        "--input-size", type=limit["input_size"].argparse_type(), help="square input size N (default: the model's own)"
    )
    p.add_argument(
        "--calib",
        default="digits",
        help="representative data: digits, embedded, a folder (labelled, or plain images), a .npy array",
    )
    p.add_argument(
        "--check", dest="check_data", help="labelled data the file is checked on (default: --calib; agreement only)"
    )
    p.add_argument(
        "--max-drop",
        type=limit["max_drop"].argparse_type(),
        help="fail, leaving no file, if accuracy/mean IoU drops more points (-100 to 100)",
    )
    p.add_argument("--out", default=".", help="output folder (created)")
    p.add_argument("--name", help="file stem (default MODEL_QUANT)")
    p.add_argument("--output", choices=OUTPUT_KINDS, help="what the file outputs (default logits)")
    p.add_argument("--io-dtype", choices=IO_DTYPES, help="integer input/output of --quant int8-io (default uint8)")
    p.add_argument(
        "--calib-count",
        type=limit["calib_count"].argparse_type(),
        help="calibration images of int8 / int8-io (default 64; 32 with --optimize)",
    )
    p.add_argument("--check-count", type=limit["check_count"].argparse_type(), help="check images (default 64)")
    p.add_argument(
        "--optimize", choices=TECHNIQUES, help="tensorflow-model-optimization first (tf_keras twin in a subprocess)"
    )
    p.add_argument(
        "--steps", type=OPTIMIZE_LIMITS["steps"].argparse_type(), help="fine-tuning steps for --optimize (default 30)"
    )
    p.add_argument("--scale", dest="input_scale", type=float, help="input: the file takes (pixel*scale-mean)/std")
    p.add_argument("--mean", dest="input_mean", type=_values, help="input mean: one value or one per channel (a,b,c)")
    p.add_argument("--std", dest="input_std", type=_values, help="input std: one value or one per channel")
    add_model_options(p, weights=True)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_export)


def _values(text):
    from deploy.user_model import parse_values

    try:
        return parse_values(text)
    except Exception as error:  # noqa: BLE001  (argparse turns the ValueError into one line)
        raise ValueError(str(error)) from None


def add_bench(commands):
    bench = commands.add_parser("bench", help=COMMANDS["bench"])
    which = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    s = which.add_parser("separable", help="depthwise-separable vs standard convolution: MACs ratio vs latency ratio")
    s.add_argument(
        "--input-size", type=BENCH_LIMITS["input_size"].argparse_type(), default=128, help="input size N (at least 32)"
    )
    s.add_argument(
        "--alpha",
        type=BENCH_LIMITS["alpha"].argparse_type(),
        default=0.5,
        help="MobileNet V1 width multiplier (1/32 to 2)",
    )
    s.add_argument("--out", default="separable_out", help="output folder (tables, chart, .tflite files)")
    s.add_argument("--repeats", type=BENCH_LIMITS["repeats"].argparse_type(), default=20)
    s.add_argument("--quick", action="store_true", help="fewer single-layer points (for tests)")
    per_op = "time each convolution of both models (depthwise, pointwise, standard) against this CPU's peak"
    s.add_argument("--per-op", action="store_true", help=per_op + ", instead of the single-layer sweep")
    s.set_defaults(run=run_separable)


def refuse_unused_options(args):
    """Options that would change nothing in the mode chosen are an error, not silently dropped."""
    if args.steps is not None and not args.optimize:
        raise UsageError("--steps applies only with --optimize")
    # QAT is always calibrated; an impossible --quant with it is refused by the API.
    quant = "int8" if args.optimize == "qat" else args.quant or DEFAULT_QUANT.get(args.optimize, "fp32")
    if args.calib_count is not None and quant not in CALIBRATED_QUANTS:
        raise UsageError(
            f"--calib-count applies only to calibrated exports (--quant int8 or int8-io); {quant} is not calibrated"
        )


def given(args, names):
    """The settings among ``names`` that the command line holds a value for."""
    return {key: getattr(args, key) for key in names if getattr(args, key) is not None}


def run_export(args):
    refuse_unused_options(args)
    args.model_options = model_options(args) or None
    settings = given(args, EXPORT_SETTINGS)
    if args.optimize:
        from deploy.optimize import optimize_and_export

        if settings.pop("model_options", None):
            raise UsageError("--set, --weights and --backbone-weights do not combine with --optimize yet")

        result = optimize_and_export(args.model, technique=args.optimize, **settings, **given(args, ("steps",)))
    else:
        from deploy.export import export

        result = export(args.model, **settings)
    from deploy.report import to_markdown

    for line in result.notes:
        note(f"note: {line}")
    if args.json:
        print_json(result.report)
    else:
        print(to_markdown([result.report]))
    note(f"wrote {result.path} and {result.sidecar_path.name}")


def run_separable(args):
    from deploy.separable import run_bench

    if args.per_op and args.quick:
        raise UsageError("--quick shortens the single-layer sweep, which --per-op replaces")
    run_bench(
        input_size=args.input_size,
        alpha=args.alpha,
        out=args.out,
        repeats=args.repeats,
        quick=args.quick,
        per_op=args.per_op,
    )
