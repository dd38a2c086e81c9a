"""Every registered classifier's parameters, multiply-adds and activation memory beside the published figures.

Measured by garden's profiler at each model's default input size; published figures come from the
catalog (``garden/catalog.py``).

    python bench/model_table.py                       # prints the Markdown table
    python bench/model_table.py --update docs/models.md   # rewrites the table in that page
    python bench/model_table.py vgg16 resnet50        # only these models
"""

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import garden  # noqa: E402
from garden._files import write_text  # noqa: E402
from garden.catalog import published_figures  # noqa: E402

BEGIN, END = "<!-- model-table:begin -->", "<!-- model-table:end -->"
HEADER = (
    "| model | input | params | published | diff | MACs (G) | published | diff | activations (MB) | source |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
)
NOTES = {
    "bias_before_norm": "a",
    "macs_errata": "b",
}
FOOTNOTES = (
    "params are trainable parameters (batch-norm moving statistics excluded, as papers and torchvision "
    "count them); MACs are multiply-adds; activations are the fp32 outputs of every layer for one image.\n\n"
    "a: the reference keeps a bias on every convolution in front of batch norm; garden drops them "
    "(the norm's mean cancels a bias), and the difference is exactly their number.\n\n"
    "b: the paper's Table 1 lists conv1 at 34 M multiply-adds; 112 x 112 x 64 x 7 x 7 x 3 is 118 M. With that "
    "row corrected the garden count is within 0.2% of the table (see garden/models/googlenet.py)."
)


def _percent(measured, published):
    return f"{100 * (measured - published) / published:+.2f}%"


def row(name, figures):
    table = garden.profile(name)
    total = table.total
    shape = "x".join(str(d) for d in table.input_shape)
    marks = "".join(mark for key, mark in NOTES.items() if figures.get(key))
    cells = [name, shape, f"{total['trainable_params']:,}"]
    if figures:
        cells += [f"{figures['params']:,.0f}", _percent(total["trainable_params"], figures["params"])]
        cells += [
            f"{total['macs'] / 1e9:.3f}",
            f"{figures['macs'] / 1e9:.3f}",
            _percent(total["macs"], figures["macs"]),
        ]
    else:
        cells += ["", "", f"{total['macs'] / 1e9:.3f}", "", ""]
    cells += [f"{total['memory_kb'] / 1024:.1f}", figures.get("source", "") + (f" ({marks})" if marks else "")]
    return "| " + " | ".join(cells) + " |"


def markdown(names):
    figures = published_figures()
    lines = [HEADER] + [row(name, figures.get(name, {})) for name in names]
    return "\n".join(lines) + "\n\n" + FOOTNOTES + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="registered classification models (default: all)")
    parser.add_argument("--update", metavar="PAGE", help=f"replace the text between {BEGIN} and {END} in PAGE")
    args = parser.parse_args(argv)
    known = garden.list_models("classification")
    unknown = sorted(set(args.models) - set(known))
    if unknown:
        parser.error(f"not classification models: {', '.join(unknown)}")
    text = markdown(args.models or known)
    if not args.update:
        print(text, end="")
        return
    page = Path(args.update).read_text()
    if BEGIN not in page or END not in page:
        parser.error(f"{args.update} has no {BEGIN} ... {END} block")
    block = f"{BEGIN}\n{text}{END}"
    write_text(args.update, re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, page, flags=re.S))
    print(f"updated {args.update}")


if __name__ == "__main__":
    main()
