"""The ``garden`` command: one subcommand per capability.

Every failure a user can cause (unknown model, bad size, unwritable path) ends with one line on
stderr and exit code 2; set ``GARDEN_DEBUG=1`` to see the traceback instead.
"""

import argparse
import contextlib
import importlib
import importlib.metadata
import os
import sys

from garden.console import note, print_json
from garden.errors import GardenError, PeerLost, UsageError
from garden.options import parse_setting, parse_size

# A command module has ``COMMANDS`` ({name: help}) and ``add_commands(commands)``, which adds those
# parsers with their ``run(args)`` set by ``set_defaults``; importing it must not import Keras.
# Garden's own are named here; other packages (deploy) add theirs under the entry-point group.
COMMAND_MODULES = ("garden.cli", "garden.segmentation.cli", "garden.train.cli", "garden.ssl.cli")
ENTRY_POINT_GROUP = "garden.commands"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


# ---------------------------------------------------------------- subcommands


def add_models(commands):
    p = commands.add_parser("models", help=COMMANDS["models"])
    p.add_argument("--task", choices=["classification", "segmentation", "ssl"])
    p.set_defaults(run=run_models)


def run_models(args):
    from garden.registry import get_entry, list_models

    for name in list_models(args.task):
        entry = get_entry(name)
        print(f"{name:<28} {entry.task:<15} {entry.description}")


def add_model_options(parser, weights=False):
    """``--set KEY=VALUE`` (repeatable) and, with ``weights``, ``--weights`` and ``--backbone-weights``."""
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a builder argument, e.g. backbone=resnet50, output_stride=8, alpha=0.35, separable=false (repeatable)",
    )
    if weights:
        parser.add_argument("--weights", help="imagenet (keras.applications' download and cache) or a weight file")
        parser.add_argument("--backbone-weights", help="a segmenter's backbone: imagenet or a weight file")


def model_options(args):
    """The builder arguments of ``--set`` (and ``--weights``/``--backbone-weights``), checked against ``args.model``."""
    from garden.registry import check_arguments, get_entry

    options = dict(parse_setting(text) for text in args.settings)
    if getattr(args, "backbone_weights", None):
        options["backbone_weights"] = args.backbone_weights
    if options:
        if str(args.model).endswith(".keras"):
            raise UsageError("--set and --backbone-weights build a registered model; a .keras file is built already")
        check_arguments(args.model, options)
    if getattr(args, "weights", None):
        if str(args.model).endswith(".keras") or get_entry(args.model).weights is None:
            raise UsageError(f"--weights: {args.model} has no keras.applications weights (see garden.weights)")
        options["weights"] = args.weights
    return options


def add_profile(commands):
    p = commands.add_parser("profile", help=COMMANDS["profile"])
    p.add_argument("model", help="a registered model name (see `garden models`)")
    p.add_argument("--input-size", help="N, HxW or HxWxC (default: the model's own)")
    add_model_options(p)
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON")
    form.add_argument("--csv", action="store_true", help="print CSV")
    form.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--separable", action="store_true", help="also price every conv standard vs depthwise-separable")
    p.add_argument("--plot", metavar="PNG", help="write the per-layer memory/parameters/multiply-adds chart")
    p.set_defaults(run=run_profile)


def run_profile(args):
    from garden import profiler

    (result,) = _profiles(args, [args.model], model_options(args))
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
    _plot(args, "plot_layers", result)


def add_compare(commands):
    p = commands.add_parser("compare", help=COMMANDS["compare"])
    p.add_argument("models", nargs="+", help="registered model names")
    p.add_argument("--input-size", help="N, HxW or HxWxC (default: each model's own)")
    p.add_argument("--plot", metavar="PNG", help="write the comparison chart")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(run=run_compare)


def run_compare(args):
    results = _profiles(args, args.models)
    rows = [_compare_row(result) for result in results]
    if args.json:
        print_json(rows)
    else:
        print("| model | input | params | MACs | activation memory (MB) |")
        print("|---|---|---|---|---|")
        for row in rows:
            figures = f"{row['params']:,} | {row['macs']:,} | {row['memory_mb']:,.2f}"
            print(f"| {row['model']} | {row['input']} | {figures} |")
    _plot(args, "plot_compare", results)


def _profiles(args, names, overrides=None):
    """The profiles of ``names`` at ``--input-size`` (with builder ``overrides``), once ``--plot`` is known writable."""
    from garden import profiler
    from garden._files import check_writable

    if args.plot:
        check_writable(args.plot)
    return [profiler.profile(build_model(name, args.input_size, **(overrides or {}))) for name in names]


def _plot(args, chart, figures):
    """``--plot``: draw ``chart`` (a function of ``garden.profiler.plots``) of ``figures``."""
    if args.plot:
        from garden.profiler import plots

        getattr(plots, chart)(figures, args.plot)
        note(f"wrote {args.plot}")


def _compare_row(result):
    totals, size = result.total, "x".join(map(str, result.input_shape))
    row = {"model": result.model, "input": size, "params": totals["params"], "macs": totals["macs"]}
    return {**row, "memory_mb": round(totals["memory_kb"] / 1024, 3)}


def add_cost(commands):
    p = commands.add_parser("cost", help=COMMANDS["cost"])
    p.add_argument("--input", required=True, help="HxWxC of the input, e.g. 28x28x192")
    p.add_argument("--filters", type=int, required=True, help="output channels N")
    p.add_argument("--kernel", type=int, required=True, help="kernel size K")
    p.add_argument("--reduce", type=int, help="channels of a 1x1 bottleneck before the KxK convolution")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(run=run_cost)


def run_cost(args):
    from garden.profiler import conv_macs, separable_macs, separable_ratio

    height, width, channels = parse_size(args.input)
    if args.filters <= 0 or args.kernel <= 0 or (args.reduce is not None and args.reduce <= 0):
        raise UsageError("--filters, --kernel and --reduce must be positive")
    n, k = args.filters, args.kernel
    standard = conv_macs(height, width, channels, n, k)
    separable = separable_macs(height, width, channels, n, k)
    if args.reduce:
        reduced = (conv_macs(height, width, channels, args.reduce, 1), conv_macs(height, width, args.reduce, n, k))
    if args.json:
        figures = {"input": [height, width, channels], "filters": n, "kernel": k, "standard_macs": standard}
        figures.update(separable_macs=separable, separable_ratio=separable / standard)
        if args.reduce:
            figures.update(reduce=args.reduce, reduced_macs=sum(reduced))
        return print_json(figures)
    print(f"{height}x{width}x{channels} -> {n} filters of {k}x{k} ('same' padding, stride 1)")
    print(f"standard convolution:        {standard:>15,} multiply-adds")
    if args.reduce:
        first, second = reduced
        print(
            f"1x1 to {args.reduce} channels, then {k}x{k}: {first + second:>12,} multiply-adds "
            f"({first:,} + {second:,}; {standard / (first + second):.1f}x fewer)"
        )
    print(
        f"depthwise-separable:         {separable:>15,} multiply-adds "
        f"(ratio {separable / standard:.5f}; 1/N + 1/K^2 = {separable_ratio(n, k):.5f})"
    )


# ---------------------------------------------------------------- shared


def build_model(name, input_size, **overrides):
    """Create a registered model at ``input_size`` (N, HxW or HxWxC text, or None): one-line errors."""
    from garden.registry import build_model as build
    from garden.registry import get_entry

    if not input_size:
        return build(name, **overrides)
    default = get_entry(name).default_input_shape
    return build(name, parse_size(input_size, default[-1] if default else None), **overrides)


COMMANDS = {
    "models": "list the registered models",
    "profile": "the per-layer cost table of a model",
    "compare": "compare models by multiply-adds, parameters and memory",
    "cost": "multiply-adds of one convolution: standard, 1x1-reduced, separable",
}


def add_commands(commands):
    for add in (add_models, add_profile, add_compare, add_cost):
        add(commands)


def command_modules():
    """Garden's command modules, then those that installed packages declare (``garden.commands``)."""
    declared = [entry.value for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    return [importlib.import_module(name) for name in (*COMMAND_MODULES, *sorted(declared))]


def build_parser(command=None):
    """The ``garden`` parser; only ``command``'s module defines its arguments (the rest list their help)."""
    parser = Parser(prog="garden", description="The classic computer-vision networks in Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        if command in module.COMMANDS:
            module.add_commands(commands)
            for name in module.COMMANDS:
                add_output_options(commands.choices[name])
        else:
            for name, help_text in module.COMMANDS.items():
                commands.add_parser(name, help=help_text, add_help=False)
    return parser


def add_output_options(parser):
    """``--quiet`` and ``--verbose`` on every command (on each leaf of one with subcommands)."""
    nested = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if nested:
        for leaf in nested[0].choices.values():
            add_output_options(leaf)
        return
    output = parser.add_argument_group("output").add_mutually_exclusive_group()
    output.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    output.add_argument(
        "-v", "--verbose", action="store_true", help="also show what TensorFlow and the converters print"
    )


def _output(args):
    """The command's terminal: libraries' output captured when run as a program (see garden.console)."""
    from garden import console

    quiet, verbose = getattr(args, "quiet", False), getattr(args, "verbose", False)
    return console.command_output(quiet=quiet, verbose=verbose, capture=args.from_command_line)


def _startup_quietly(arguments):
    """TensorFlow's start-up lines (if building the parser imports it) off the terminal, unless asked for."""
    from garden._quiet import native_stderr_discarded

    wanted = {"-v", "--verbose"} & set(arguments) or os.environ.get("GARDEN_DEBUG")
    return contextlib.nullcontext() if wanted else native_stderr_discarded()


def _command(argv):
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv=None):
    from garden.registry import UnknownArgumentError, UnknownModelError

    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        with _startup_quietly(arguments):  # a command's parser may import Keras (train: its strategies)
            parser = build_parser(_command(arguments))
        args = parser.parse_args(arguments)
        args.argv, args.from_command_line = arguments, argv is None
        with _output(args):
            if args.command not in ("models", "cost"):
                from garden._quiet import import_keras_quietly

                import_keras_quietly()
            args.run(args)
    except BrokenPipeError:  # the reader of stdout left (`garden models | head`): not an error of ours
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), sys.stdout.fileno())
        return 141
    except (GardenError, UnknownModelError, UnknownArgumentError, OSError) as error:
        if os.environ.get("GARDEN_DEBUG"):
            raise
        print(f"garden: error: {error}", file=sys.stderr)
        if isinstance(error, PeerLost) and argv is None:
            sys.stderr.flush()
            os._exit(2)  # see PeerLost: the distributed runtime's exit would hang, then abort
        return 2
    except KeyboardInterrupt:
        print("garden: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001  (a fault of garden's, or beneath it: one line, not a trace)
        if os.environ.get("GARDEN_DEBUG"):
            raise
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        print(f"garden: internal error: {type(error).__name__}: {first} (GARDEN_DEBUG=1 shows where)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
