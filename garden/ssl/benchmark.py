"""The self-supervised benchmark's protocol and tables, shared by ``bench/ssl_digits.py`` and
``bench/ssl_photo_digits.py``.

A ``Protocol`` names the label shares of its columns: a linear probe and a k-NN on frozen features
at each share of ``fractions`` (the frozen columns at a share below 100% averaged over ``draws``
stratified draws of it), and fine-tuning at each share of ``finetune_fractions`` (on the first
draw). Every method is compared with the better of two random-init encoders (the floor) and its
fine-tuning with supervised training from scratch on the same labels; ``margin_table`` says, cell
by cell, whether the margin exceeds twice the larger seed standard deviation of the two rows.

>>> protocol = Protocol(fractions=(1.0, 0.1), finetune_fractions=(0.1,))
>>> labelled = protocol.label_sets(train_y, seed=0)
>>> scores = protocol.evaluate(encoder, (train_x, train_y, test_x, test_y), labelled)
"""

import math
from dataclasses import dataclass, field

import numpy as np

from garden.ssl import evaluate


def _percent(fraction):
    return f"{100 * fraction:g}"


@dataclass(frozen=True)
class Protocol:
    fractions: tuple = (1.0, 0.1)
    finetune_fractions: tuple = (0.1,)
    draws: int = 5
    finetune: dict = field(default_factory=lambda: dict(epochs=30, batch_size=32, learning_rate=1e-3))
    probe_iterations: int = 2000

    @property
    def frozen_columns(self):
        return [f"{kind}_{_percent(f)}" for f in self.fractions for kind in ("linear", "knn")]

    @property
    def finetune_columns(self):
        return [f"finetune_{_percent(f)}" for f in self.finetune_fractions]

    @property
    def columns(self):
        return self.frozen_columns + self.finetune_columns

    @staticmethod
    def title(column):
        kind, share = column.rsplit("_", 1)
        name = {"linear": "linear probe", "knn": "k-NN", "finetune": "fine-tune"}[kind]
        return f"{name}, {share}% labels"

    def label_sets(self, labels, seed=0):
        """Per share, the stratified index draws: all indices at 100%, ``draws`` draws below."""
        shares = sorted(set(self.fractions) | set(self.finetune_fractions))
        return {
            share: [np.arange(len(labels))]
            if share >= 1
            else [evaluate.label_subset(labels, share, seed=seed + draw) for draw in range(self.draws)]
            for share in shares
        }

    def frozen_scores(self, train_f, train_y, test_f, test_y, label_sets):
        """The frozen-feature columns for given feature vectors."""
        scores = {}
        for share in self.fractions:
            draws = label_sets[share]
            scores[f"linear_{_percent(share)}"] = np.mean(
                [
                    evaluate.linear_probe(train_f[s], train_y[s], test_f, test_y, max_iterations=self.probe_iterations)
                    for s in draws
                ]
            )
            scores[f"knn_{_percent(share)}"] = np.mean(
                [evaluate.knn_accuracy(train_f[s], train_y[s], test_f, test_y) for s in draws]
            )
        return scores

    def finetune_scores(self, encoder, data, label_sets, seed=0):
        """The fine-tuning columns: ``encoder`` plus a linear classifier trained end to end on each share."""
        train_x, train_y, test_x, test_y = data
        num_classes = int(max(train_y.max(), test_y.max())) + 1
        scores = {}
        for share in self.finetune_fractions:
            chosen = label_sets[share][0]
            scores[f"finetune_{_percent(share)}"] = evaluate.finetune(
                encoder, train_x[chosen], train_y[chosen], test_x, test_y, num_classes, seed=seed, **self.finetune
            )
        return scores

    def evaluate(self, encoder, data, label_sets, finetune=True, seed=0):
        """Every column's accuracy for ``encoder`` on ``data = (train_x, train_y, test_x, test_y)``."""
        train_x, train_y, test_x, test_y = data
        train_f, test_f = evaluate.extract_features(encoder, train_x), evaluate.extract_features(encoder, test_x)
        scores = self.frozen_scores(train_f, train_y, test_f, test_y, label_sets)
        if finetune:
            scores.update(self.finetune_scores(encoder, data, label_sets, seed))
        return scores


def mean_scores(runs, columns):
    """Per column present in the runs, ``(mean, standard deviation)`` over runs (dicts of accuracies)."""
    keys = [key for key in columns if key in runs[0]]
    return {key: (float(np.mean([r[key] for r in runs])), float(np.std([r[key] for r in runs]))) for key in keys}


def table_header(columns, leading=("method", "pre-training (s)", "epochs")):
    titles = list(leading) + [Protocol.title(column) for column in columns]
    return ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]


def table_row(name, seconds, epochs, runs, columns):
    """One markdown row: accuracies in % as mean ± sd over runs (no sd for one run), '-' where absent."""
    stats = mean_scores(runs, columns)

    def cell(key):
        if key not in stats:
            return "-"
        mean, spread = stats[key]
        return f"{100 * mean:.1f}" + (f" ± {100 * spread:.1f}" if len(runs) > 1 else "")

    return f"| {name} | {seconds} | {epochs} | " + " | ".join(cell(key) for key in columns) + " |"


def better_row(rows, columns):
    """Per column, the ``(mean, sd)`` of whichever of ``rows`` (lists of runs) has the higher mean."""
    stats = [mean_scores(runs, columns) for runs in rows]
    return {key: max((s[key] for s in stats if key in s), key=lambda pair: pair[0]) for key in columns}


def margin(method_stats, reference):
    """``(points, clear)``: the mean margin in points and whether it exceeds twice the larger sd (None: one run)."""
    (mean, spread), (base, base_spread) = method_stats, reference
    points = 100 * (mean - base)
    needed = 2 * max(spread, base_spread)
    return points, (None if needed == 0 else mean - base > needed)


def margin_table(results, references, columns):
    """Each method's margin over ``references[column]`` (a ``(mean, sd)``), in points, marked where it is
    clear of twice the larger of the two rows' seed standard deviations ('ok'), not clear ('NOT CLEAR'),
    or cannot be told with one run."""
    lines = table_header(columns, leading=("method",))
    for method, runs in results.items():
        stats = mean_scores(runs, columns)
        cells = []
        for key in columns:
            points, clear = margin(stats[key], references[key])
            cells.append(f"{points:+.1f}" + {True: " ok", False: " NOT CLEAR", None: ""}[clear])
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def plot_curves(curves, path, ylabel="pre-training loss"):
    """One small panel per method: its pre-training loss per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3
    rows = math.ceil(len(curves) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.3 * rows), dpi=100, squeeze=False)
    for axis, (method, losses) in zip(axes.flat, curves.items()):
        axis.plot(range(1, len(losses) + 1), losses, marker="o", markersize=2)
        axis.set_title(method, fontsize=9)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(curves) :]:
        axis.axis("off")
    figure.supxlabel("epoch", fontsize=8)
    figure.supylabel(ylabel, fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


@dataclass
class BenchmarkResult:
    lines: list  # the markdown table, floors and references first
    results: dict  # method -> list of per-seed score dicts
    floor: dict  # frozen column -> (mean, sd) of the better random-init row
    supervised: dict  # fine-tuning column -> (mean, sd) of supervised training from scratch
    curves: dict  # method -> pre-training loss per epoch (first seed)
    seconds: dict = field(default_factory=dict)  # method -> mean pre-training seconds

    def margins(self, columns):
        """The margin table against the floor (frozen columns) and supervised (fine-tuning columns)."""
        return margin_table(self.results, {**self.floor, **self.supervised}, columns)


def run_benchmark(
    settings,
    data,
    protocol,
    *,
    backbone,
    seeds,
    label_seed=0,
    learning_rate=2e-3,
    epochs_scale=1.0,
    references=None,
    log=None,
):
    """Pre-train each method of ``settings`` (name -> epochs, builder arguments, optional learning_rate)
    once per seed on ``data``'s training images, evaluate every encoder with ``protocol``, beside both
    random-init floors and supervised training from scratch. ``references`` (name -> runs) are extra
    rows shown after the floors; ``log`` gets each row as it is made."""
    import keras

    from garden.ssl.pretrain import pretrain

    log = log or (lambda line: None)
    train_x, train_y = data[0], data[1]
    label_sets = protocol.label_sets(train_y, label_seed)
    columns = protocol.columns
    as_initialised, recalibrated, supervised = [], [], []
    for seed in seeds:
        encoder = evaluate.random_encoder(backbone, train_x.shape[1:], seed)
        supervised.append(protocol.finetune_scores(encoder, data, label_sets, seed))
        as_initialised.append(protocol.evaluate(encoder, data, label_sets, finetune=False))
        evaluate.recalibrate_batch_norm(encoder, train_x, seed=seed)
        recalibrated.append(protocol.evaluate(encoder, data, label_sets, finetune=False))
        keras.backend.clear_session()
    lines = table_header(columns)
    lines.append(table_row("random init (no training)", "-", "-", as_initialised, columns))
    lines.append(table_row("random init, batch-norm statistics from the images", "-", "-", recalibrated, columns))
    lines.append(table_row(f"supervised from scratch, same labels ({backbone})", "-", "-", supervised, columns))
    for name, runs in (references or {}).items():
        lines.append(table_row(name, "-", "-", runs, columns))
    for line in lines:
        log(line)
    outcome = BenchmarkResult(
        lines,
        {},
        better_row([as_initialised, recalibrated], protocol.frozen_columns),
        mean_scores(supervised, protocol.finetune_columns),
        {},
    )
    for method, options in settings.items():
        options = dict(options)
        epochs = max(1, round(options.pop("epochs") * epochs_scale))
        rate = options.pop("learning_rate", learning_rate)
        runs, seconds = [], []
        for seed in seeds:
            result = pretrain(
                method, train_x, epochs=epochs, learning_rate=rate, seed=seed, backbone=backbone, **options
            )
            outcome.curves.setdefault(method, result.history["loss"])
            runs.append(protocol.evaluate(result.encoder, data, label_sets, seed=seed))
            seconds.append(result.seconds)
            keras.backend.clear_session()
        outcome.results[method], outcome.seconds[method] = runs, float(np.mean(seconds))
        lines.append(table_row(method, f"{np.mean(seconds):.0f}", epochs, runs, columns))
        log(lines[-1])
    return outcome


def command_line(argv, *, doc, settings, protocol, load, backbone, learning_rate, references=None):
    """A benchmark script's main: parse ``argv``, ``load(args)`` the data ``(train_x, train_y, test_x,
    test_y, name)``, run every chosen method of ``settings``, print the table, the margins and the time.
    ``references(data, protocol, label_seed)`` gives extra rows (name -> runs)."""
    import argparse
    import sys
    import time

    import keras

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(settings), choices=list(settings))
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every method's epochs")
    parser.add_argument("--seed", type=int, default=0, help="the data split, label draws and first run's seed")
    parser.add_argument("--seeds", type=int, default=1, help="runs per method (seeds seed, seed+1, ...): mean ± sd")
    parser.add_argument("--limit", type=int, help="the first N images of each part (a quick run)")
    parser.add_argument("--plot", metavar="PNG", help="write every method's pre-training loss curve in one figure")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    *data, name = load(args)
    seeds = [args.seed + run for run in range(args.seeds)]
    print(
        f"{name}: {len(data[0])} pre-training images (labels unused), {len(data[2])} test images; "
        f"backbone {backbone}, backend {keras.backend.backend()}, seeds {seeds}",
        file=sys.stderr,
    )
    outcome = run_benchmark(
        {method: settings[method] for method in args.methods},
        data,
        protocol,
        backbone=backbone,
        seeds=seeds,
        label_seed=args.seed,
        learning_rate=learning_rate,
        epochs_scale=args.epochs_scale,
        references=references(data, protocol, args.seed) if references else None,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print("\n".join(outcome.lines))
    print("\nMean margin over the better random-init row (fine-tuning: over supervised from scratch), in points:\n")
    print("\n".join(outcome.margins(protocol.columns)))
    if args.plot:
        plot_curves(outcome.curves, args.plot)
    runs = f"{len(seeds)} runs per method (mean ± sd); " if len(seeds) > 1 else ""
    print(f"\n{runs}accuracy in % on {len(data[2])} test images; total {time.perf_counter() - start:.0f} s")
    return outcome
