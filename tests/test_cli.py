"""The ``garden`` command: outputs that load, and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys

import matplotlib.image
import pytest

from garden.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_by_task(capsys):
    code, out, _ = run(capsys, "models", "--task", "classification")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert "alexnet" in names and "lenet5" in names


def test_profile_markdown_and_json(capsys):
    code, out, _ = run(capsys, "profile", "alexnet", "--input-size", "227", "--markdown")
    assert code == 0
    assert "| conv1_conv | Conv2D | 227x227x3 | 56x56x64 |" in out
    assert "61,100,840" in out and "27.50" in out
    code, out, _ = run(capsys, "profile", "lenet5", "--json")
    data = json.loads(out)
    assert data["model"] == "lenet5" and data["total"]["params"] == 61706


def test_profile_csv_and_plot(capsys, tmp_path):
    plot = tmp_path / "layers.png"
    code, out, _ = run(capsys, "profile", "lenet5", "--csv", "--plot", str(plot))
    assert code == 0
    assert out.splitlines()[0].startswith("name,type,input_shape,output_shape")
    image = matplotlib.image.imread(plot)
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert not [p for p in os.listdir(tmp_path) if p != "layers.png"]  # no temporary left behind


def test_compare_plot(capsys, tmp_path):
    plot = tmp_path / "compare.png"
    code, out, _ = run(capsys, "compare", "lenet5", "alexnet", "--plot", str(plot))
    assert code == 0 and "| alexnet |" in out
    assert matplotlib.image.imread(plot).ndim == 3


def test_cost_reproduces_the_bottleneck_example(capsys):
    code, out, _ = run(capsys, "cost", "--input", "28x28x192", "--filters", "32", "--kernel", "5", "--reduce", "16")
    assert code == 0
    assert "120,422,400" in out and "12,443,648" in out and "2,408,448 + 10,035,200" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["profile", "alexnett"], "unknown model 'alexnett'; did you mean alexnet"),
        (["profile", "alexnet", "--input-size", "16"], "too small for alexnet"),
        (["profile", "alexnet", "--input-size", "22x"], "malformed size"),
        (["profile", "alexnet", "--input-size", "-3"], "malformed size"),
        (["profile", "lenet5", "--plot", "/nonexistent/dir/x.png"], "does not exist"),
        (["profile", "lenet5", "--bogus"], "unrecognized arguments"),
        (["models", "--task", "detection"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unwritable_plot_leaves_nothing(capsys, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        code, _, err = run(capsys, "profile", "lenet5", "--plot", str(folder / "x.png"))
        assert code == 2 and "not writable" in err
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_native_stderr_is_discarded_only_inside_the_block(capfd):
    from garden._quiet import native_stderr_discarded

    os.write(2, b"before\n")
    with native_stderr_discarded():
        os.write(2, b"C++ chatter\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nafter\n"


def _user_environment():
    """This environment without the switches that silence or unsilence TensorFlow, as a user's shell has it."""
    return {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GARDEN_DEBUG")}


def test_console_script_and_module_entry_keep_the_terminal_clean():
    """From a user's shell: no TensorFlow start-up lines, and a bad name is one line on stderr."""
    env = _user_environment()
    script = os.path.join(os.path.dirname(sys.executable), "garden")
    listed = subprocess.run([script, "models"], capture_output=True, text=True, timeout=300, env=env)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert "alexnet" in listed.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "garden", "profile", "alexnett"], capture_output=True, text=True, timeout=300, env=env
    )
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines() == [
        "garden: error: unknown model 'alexnett'; did you mean alexnet, lenet5, googlenet?"
    ]


@pytest.mark.parametrize("script", ["ssl_digits.py", "ssl_photo_digits.py", "segmentation_train.py"])
def test_bench_scripts_start_without_tensorflow_lines(script):
    """The benchmarks import garden before Keras, so their tables are not preceded by TensorFlow's log."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = _user_environment()
    env["PYTHONPATH"] = root
    shown = subprocess.run(
        [sys.executable, os.path.join(root, "bench", script), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    assert shown.stdout.startswith("usage:")
