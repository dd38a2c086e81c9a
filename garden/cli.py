"""The ``garden`` command: one subcommand per capability.

Every failure a user can cause (unknown model, bad size, unwritable path) ends with one line on
stderr and exit code 2; set ``GARDEN_DEBUG=1`` to see the traceback instead.
"""

import argparse
import importlib
import os
import sys

from garden.errors import GardenError, UsageError

# Capabilities beyond the foundation add their subcommands here: each module named has
# ``add_commands(commands)``, which adds parsers whose ``run(args)`` is set with ``set_defaults``.
COMMAND_MODULES = ("garden.segmentation.cli", "garden.train.cli", "deploy.cli", "garden.ssl.cli")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def parse_size(text, channels=None):
    """``227``, ``227x227`` or ``227x227x3`` -> (H, W, C) with ``channels`` filling in C."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise UsageError(f"malformed size {text!r}: use N, HxW or HxWxC with positive integers") from None
    if not 1 <= len(parts) <= 3 or min(parts) <= 0:
        raise UsageError(f"malformed size {text!r}: use N, HxW or HxWxC with positive integers")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) == 2:
        parts.append(channels or 3)
    return tuple(parts)


# ---------------------------------------------------------------- subcommands


def add_models(commands):
    p = commands.add_parser("models", help="list the registered models")
    p.add_argument("--task", choices=["classification", "segmentation", "ssl"])
    p.set_defaults(run=run_models)


def run_models(args):
    from garden.registry import get_entry, list_models

    for name in list_models(args.task):
        entry = get_entry(name)
        print(f"{name:<28} {entry.task:<15} {entry.description}")


def add_profile(commands):
    p = commands.add_parser("profile", help="the per-layer cost table of a model")
    p.add_argument("model", help="a registered model name (see `garden models`)")
    p.add_argument("--input-size", help="N, HxW or HxWxC (default: the model's own)")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON")
    form.add_argument("--csv", action="store_true", help="print CSV")
    form.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--separable", action="store_true", help="also price every conv standard vs depthwise-separable")
    p.add_argument("--plot", metavar="PNG", help="write the per-layer memory/parameters/multiply-adds chart")
    p.set_defaults(run=run_profile)


def run_profile(args):
    from garden import profiler
    from garden._files import check_writable

    if args.plot:
        check_writable(args.plot)
    result = profiler.profile(build_model(args.model, args.input_size))
    if args.json:
        print(profiler.to_json(result))
    elif args.csv:
        print(profiler.to_csv(result), end="")
    elif args.markdown:
        print(profiler.to_markdown(result))
    else:
        print(profiler.to_text(result))
    if args.separable:
        print()
        print(profiler.separable_markdown(profiler.separable_comparison(result)))
    if args.plot:
        from garden.profiler.plots import plot_layers

        plot_layers(result, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)


def add_compare(commands):
    p = commands.add_parser("compare", help="compare models by multiply-adds, parameters and memory")
    p.add_argument("models", nargs="+", help="registered model names")
    p.add_argument("--input-size", help="N, HxW or HxWxC (default: each model's own)")
    p.add_argument("--plot", metavar="PNG", help="write the comparison chart")
    p.set_defaults(run=run_compare)


def run_compare(args):
    from garden import profiler
    from garden._files import check_writable

    if args.plot:
        check_writable(args.plot)
    results = [profiler.profile(build_model(name, args.input_size)) for name in args.models]
    print("| model | input | params | MACs | activation memory (MB) |")
    print("|---|---|---|---|---|")
    for r in results:
        t = r.total
        size = "x".join(map(str, r.input_shape))
        print(f"| {r.model} | {size} | {t['params']:,} | {t['macs']:,} | {t['memory_kb'] / 1024:,.2f} |")
    if args.plot:
        from garden.profiler.plots import plot_compare

        plot_compare(results, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)


def add_cost(commands):
    p = commands.add_parser("cost", help="multiply-adds of one convolution: standard, 1x1-reduced, separable")
    p.add_argument("--input", required=True, help="HxWxC of the input, e.g. 28x28x192")
    p.add_argument("--filters", type=int, required=True, help="output channels N")
    p.add_argument("--kernel", type=int, required=True, help="kernel size K")
    p.add_argument("--reduce", type=int, help="channels of a 1x1 bottleneck before the KxK convolution")
    p.set_defaults(run=run_cost)


def run_cost(args):
    from garden.profiler import conv_macs, separable_macs, separable_ratio

    height, width, channels = parse_size(args.input)
    if args.filters <= 0 or args.kernel <= 0 or (args.reduce is not None and args.reduce <= 0):
        raise UsageError("--filters, --kernel and --reduce must be positive")
    n, k = args.filters, args.kernel
    standard = conv_macs(height, width, channels, n, k)
    separable = separable_macs(height, width, channels, n, k)
    print(f"{height}x{width}x{channels} -> {n} filters of {k}x{k} ('same' padding, stride 1)")
    print(f"standard convolution:        {standard:>15,} multiply-adds")
    if args.reduce:
        first = conv_macs(height, width, channels, args.reduce, 1)
        second = conv_macs(height, width, args.reduce, n, k)
        print(
            f"1x1 to {args.reduce} channels, then {k}x{k}: {first + second:>12,} multiply-adds "
            f"({first:,} + {second:,}; {standard / (first + second):.1f}x fewer)"
        )
    print(
        f"depthwise-separable:         {separable:>15,} multiply-adds "
        f"(ratio {separable / standard:.5f}; 1/N + 1/K^2 = {separable_ratio(n, k):.5f})"
    )


# ---------------------------------------------------------------- shared


def build_model(name, input_size):
    """Create a registered model at ``input_size``, turning build failures into one-line errors."""
    from garden.registry import create_model, get_entry

    entry = get_entry(name)
    overrides = {}
    if input_size:
        default = entry.default_input_shape
        overrides["input_shape"] = parse_size(input_size, default[-1] if default else None)
    try:
        return create_model(name, **overrides)
    except ValueError as error:
        size = "x".join(map(str, overrides.get("input_shape", ())))
        message = str(error).lower()
        if "zero or negative" in message or "negative dimension" in message:
            raise UsageError(f"input {size} is too small for {name}: a layer's output would be empty") from None
        lines = [line for line in str(error).strip().splitlines() if line and "Exception encountered" not in line]
        raise UsageError(f"cannot build {name} at {size or 'its default size'}: {lines[0] if lines else error}") from None


def build_parser():
    parser = Parser(prog="garden", description="The classic computer-vision networks in Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_models, add_profile, add_compare, add_cost):
        add(commands)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(commands)
    return parser


def main(argv=None):
    from garden.registry import UnknownArgumentError, UnknownModelError

    try:
        args = build_parser().parse_args(argv)
        args.argv, args.from_command_line = list(sys.argv[1:] if argv is None else argv), argv is None
        args.run(args)
    except (GardenError, UnknownModelError, UnknownArgumentError, OSError) as error:
        if os.environ.get("GARDEN_DEBUG"):
            raise
        print(f"garden: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("garden: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
