"""``garden export`` and ``garden bench separable``."""

import sys

from garden.errors import UsageError


COMMANDS = {
    "export": "quantize and export a model to TFLite or ONNX, checked and measured",
    "bench": "benchmarks",
}


def add_commands(commands):
    p = commands.add_parser("export", help=COMMANDS["export"])
    p.add_argument("model", help="a registered model name or a .keras file")
    p.add_argument("--format", default="tflite", choices=["tflite", "onnx"])
    p.add_argument("--quant", default="fp32", choices=["fp32", "fp16", "dynamic", "int8", "int8-io"])
    p.add_argument("--input-size", type=int, help="square input size N (default: the model's own)")
    p.add_argument("--calib", default="digits", help="representative data source (digits, embedded, a folder, ...)")
    p.add_argument("--check", dest="check_data", help="data source the file is checked on (default: --calib)")
    p.add_argument("--max-drop", type=float, help="fail, leaving no file, if accuracy/mean IoU drops more points")
    p.add_argument("--out", default=".", help="output folder")
    p.add_argument("--name", help="file stem (default MODEL_QUANT)")
    p.add_argument("--output", default="logits", choices=["logits", "class_map"], help="what the file outputs")
    p.add_argument("--io-dtype", default="uint8", choices=["uint8", "int8"], help="integer input/output of int8-io")
    p.add_argument("--calib-count", type=int, default=64, help="calibration images")
    p.add_argument("--check-count", type=int, default=64, help="check images")
    p.add_argument("--optimize", choices=["qat", "prune", "cluster"],
                   help="tensorflow-model-optimization first (tf_keras twin in a subprocess)")
    p.add_argument("--steps", type=int, default=30, help="fine-tuning steps for --optimize")
    p.set_defaults(run=run_export)

    bench = commands.add_parser("bench", help=COMMANDS["bench"])
    which = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    s = which.add_parser("separable", help="depthwise-separable vs standard convolution: MACs ratio vs latency ratio")
    s.add_argument("--input-size", type=int, default=128)
    s.add_argument("--alpha", type=float, default=0.5, help="MobileNet V1 width multiplier")
    s.add_argument("--out", default="separable_out", help="output folder (tables, chart, .tflite files)")
    s.add_argument("--repeats", type=int, default=20)
    s.add_argument("--quick", action="store_true", help="fewer single-layer points (for tests)")
    s.set_defaults(run=run_separable)


def run_export(args):
    if args.input_size is not None and args.input_size <= 0:
        raise UsageError(f"--input-size must be positive, got {args.input_size}")
    if args.optimize:
        from deploy.optimize import optimize_and_export

        result = optimize_and_export(
            args.model, technique=args.optimize, format=args.format, quant=args.quant, input_size=args.input_size,
            calib=args.calib, check_data=args.check_data, max_drop=args.max_drop, out=args.out, name=args.name,
            steps=args.steps,
        )
    else:
        from deploy.export import export

        result = export(
            args.model, format=args.format, quant=args.quant, input_size=args.input_size, calib=args.calib,
            check_data=args.check_data, max_drop=args.max_drop, out=args.out, name=args.name, output=args.output,
            io_dtype=args.io_dtype, calib_count=args.calib_count, check_count=args.check_count,
        )
    from deploy.report import to_markdown

    print(to_markdown([result.report]))
    print(f"wrote {result.path} and {result.sidecar_path.name}", file=sys.stderr)


def run_separable(args):
    from deploy.separable import run_bench

    run_bench(input_size=args.input_size, alpha=args.alpha, out=args.out, repeats=args.repeats, quick=args.quick)
