"""The SSL benchmark's protocol (garden.ssl.benchmark): its columns, label draws, margins and a tiny run."""

import numpy as np
import pytest

from garden.ssl.benchmark import Protocol, better_row, margin, margin_table, mean_scores, run_benchmark, table_row


def test_columns_follow_the_shares():
    protocol = Protocol(fractions=(1.0, 0.1, 0.01), finetune_fractions=(0.01, 0.1))
    assert protocol.columns == [
        "linear_100", "knn_100", "linear_10", "knn_10", "linear_1", "knn_1", "finetune_1", "finetune_10",
    ]  # fmt: skip
    assert Protocol.title("knn_1") == "k-NN, 1% labels" and Protocol.title("finetune_10") == "fine-tune, 10% labels"


def test_label_sets_are_stratified_draws_and_all_at_100():
    labels = np.repeat(np.arange(10), 50)
    sets = Protocol(fractions=(1.0, 0.1), finetune_fractions=(0.02,), draws=3).label_sets(labels, seed=4)
    assert set(sets) == {1.0, 0.1, 0.02}
    np.testing.assert_array_equal(sets[1.0][0], np.arange(500))
    assert len(sets[0.1]) == 3 and all(np.bincount(labels[s], minlength=10).tolist() == [5] * 10 for s in sets[0.1])
    assert not np.array_equal(sets[0.1][0], sets[0.1][1])  # each draw its own
    assert all(len(s) == 10 for s in sets[0.02])  # at least one per class


def test_margin_is_clear_beyond_twice_the_larger_spread():
    assert margin((0.60, 0.01), (0.50, 0.02)) == pytest.approx((10.0, True))  # 0.10 > 2 * 0.02
    assert margin((0.53, 0.01), (0.50, 0.02))[1] is False  # 0.03 < 0.04
    assert margin((0.40, 0.0), (0.50, 0.0))[1] is None  # one run: no spread to judge by


def test_tables_show_mean_and_spread_and_mark_the_margins():
    runs = [{"linear_100": 0.8, "knn_100": 0.7}, {"linear_100": 0.9, "knn_100": 0.7}]
    columns = ["linear_100", "knn_100"]
    assert mean_scores(runs, columns)["linear_100"] == pytest.approx((0.85, 0.05))
    assert table_row("m", 12, 3, runs, columns) == "| m | 12 | 3 | 85.0 ± 5.0 | 70.0 ± 0.0 |"
    floors = better_row([[{"linear_100": 0.2, "knn_100": 0.69}], [{"linear_100": 0.3, "knn_100": 0.1}]], columns)
    assert floors == {"linear_100": (0.3, 0.0), "knn_100": (0.69, 0.0)}
    lines = margin_table({"m": runs}, floors, columns)
    assert lines[-1] == "| m | +55.0 ok | +1.0 |"  # knn: 0.01 above, sd 0: neither clear nor not


@pytest.mark.slow
def test_a_tiny_benchmark_runs_every_row(tmp_path):
    """One method, one seed, 64 digits: every row and column filled, accuracies in [0, 1]."""
    from garden.ssl.data import load_split

    train_x, train_y, test_x, test_y, _ = load_split("digits", size=16, limit=80)
    protocol = Protocol(fractions=(1.0, 0.5), finetune_fractions=(0.5,), draws=2, finetune=dict(epochs=1))
    settings = {"simclr": dict(epochs=2, batch_size=16, projection_units=(16, 8))}
    outcome = run_benchmark(settings, (train_x, train_y, test_x, test_y), protocol, backbone="small_cnn", seeds=[0])
    assert set(outcome.results) == {"simclr"} and len(outcome.curves["simclr"]) == 2
    assert len(outcome.lines) == 2 + 3 + 1 and "| - |" not in outcome.lines[-1]
    for runs in outcome.results.values():
        assert set(runs[0]) == set(protocol.columns) and all(0 <= v <= 1 for v in runs[0].values())
    assert set(outcome.floor) == set(protocol.frozen_columns) and set(outcome.supervised) == {"finetune_50"}
    assert len(outcome.margins(protocol.columns)) == 2 + 1
