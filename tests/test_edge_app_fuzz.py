"""Property-based tests (hypothesis) of what garden-edge reads from its user: every parser and loader either
returns something usable or raises one :class:`EdgeError` line, whatever it is given; never another exception.

The model files are converted once per session (``helpers.build_models``) and copied once per module; the
property loops only write small files and read them back.
"""

import html
import json
import math
import shutil
import string
from urllib.parse import quote

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_app.__main__ import MAX_SIDE, build_parser
from edge_app.errors import EdgeError
from edge_app.metadata import label_lines, read_metadata
from edge_app.model import Overrides, load_model, preprocess
from edge_app.postprocess import postprocess
from edge_app.render import colour_table, render
from edge_app.serve import FrameServer, check_token, parse_address
from helpers import NAMES, draw_frame, pack_labels

MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAST = Overrides(runtime="interpreter")  # the cheaper of LiteRT's two loaders; both read the same file


def outcome(call, *args, **kwargs):
    """What ``call`` returns, or the EdgeError it raised (whose message must be one line)."""
    try:
        return call(*args, **kwargs)
    except EdgeError as error:
        assert str(error) and "\n" not in str(error), repr(str(error))
        return error


def parsed(*argv):
    """garden-edge's command line parsed, or the one-line EdgeError it gives."""
    return outcome(build_parser().parse_args, ["--model", "m.tflite", *argv])


@pytest.fixture(scope="module")
def work(models, tmp_path_factory):
    """Copies of the test models in a folder of this module's own (sidecars are written beside them)."""
    folder = tmp_path_factory.mktemp("fuzz")
    files = {name: folder / f"{name}.tflite" for name in ("int8", "classifier", "packed")}
    for name, path in files.items():
        shutil.copy(models["classifier" if name == "packed" else name], path)
    pack_labels(files["packed"], NAMES)
    files["labels"] = folder / "labels.txt"
    files["scratch"] = folder / "scratch.tflite"
    return files


# ---------------------------------------------------------------- --serve addresses, --size, tokens, requests

hosts = st.one_of(
    st.ip_addresses().map(str),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,3}", fullmatch=True),
)
address_like = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\[?[0-9a-fA-F:.]{0,24}\]?:-?[0-9]{0,7}", fullmatch=True),
    st.builds(lambda h, p: f"{h}:{p}", hosts, st.integers(-5, 70000)),
)


@MANY
@given(address_like)
def test_any_serve_address_is_parsed_or_refused_in_one_line(text):
    result = outcome(parse_address, text)
    if not isinstance(result, EdgeError):
        host, port = result
        assert 0 <= port <= 65535 and host and text.endswith(str(port))
    assert isinstance(parsed(f"--serve={text}"), EdgeError) == isinstance(result, EdgeError)


@MANY
@given(hosts, st.integers(0, 65535))
def test_every_host_and_port_survives_the_round_trip(host, port):
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert parse_address(text) == (host, port)


@MANY
@given(
    st.one_of(
        st.text(max_size=20),
        st.builds(lambda w, h, x: f"{w}{x}{h}", st.integers(-3, 9000), st.integers(-3, 9000), st.sampled_from("xX*")),
    )
)
def test_any_size_is_parsed_or_refused_in_one_line(text):
    result = parsed(f"--size={text}")
    if not isinstance(result, EdgeError):
        width, height = result.size
        assert 1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE
        assert [int(v) for v in text.lower().split("x")] == [width, height]


@MANY
@given(st.one_of(st.text(max_size=140), st.text(string.ascii_letters + string.digits + "-_", max_size=140)))
def test_a_token_is_accepted_only_where_it_is_safe_in_a_url_and_a_page(text):
    result = outcome(check_token, text)
    if not isinstance(result, EdgeError):
        assert result == text and 16 <= len(text) <= 128
        assert quote(text, safe="") == text and html.escape(text) == text


@pytest.fixture(scope="module")
def guarded_server():
    server = FrameServer(("127.0.0.1", 0), "fuzz", token="Secret-token_0123456789").start()
    yield server
    server.close()


@MANY
@given(
    junk=st.text(max_size=30),
    candidate=st.one_of(st.just("Secret-token_0123456789"), st.text(max_size=30)),
    header=st.one_of(st.none(), st.text(max_size=40)),
    in_header=st.booleans(),
)
def test_only_a_request_carrying_the_token_is_let_in(guarded_server, junk, candidate, header, in_header):
    token = guarded_server.token
    path = f"/{quote(junk)}?token={quote(candidate)}"
    if in_header:
        header = f"Bearer {candidate}"
        path = f"/{quote(junk)}"
    allowed = guarded_server.allows(path, header)
    assert allowed == (candidate == token) if (in_header or header is None) else allowed in (True, False)
    assert not allowed or token in (path + str(header))


# ---------------------------------------------------------------- sidecar JSON

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
numbers = st.integers(-300, 300) | st.floats(allow_nan=True, allow_infinity=True)
sidecars = st.fixed_dictionaries(
    {},
    optional={
        "task": st.sampled_from(["segmentation", "classification", "detection"]) | json_values,
        "input": st.fixed_dictionaries(
            {},
            optional={
                "height": numbers | json_values,
                "width": numbers | json_values,
                "scale": numbers | json_values,
                "mean": numbers | st.lists(numbers, max_size=4) | json_values,
                "std": numbers | st.lists(numbers, max_size=4) | json_values,
            },
        )
        | json_values,
        "output": st.fixed_dictionaries({}, optional={"num_classes": numbers | json_values}) | json_values,
        "class_names": st.lists(st.text(max_size=12) | json_values, max_size=6) | json_values,
        "colors": st.lists(st.lists(numbers, max_size=4) | json_values, max_size=6) | json_values,
        "macs": numbers | json_values,
        "params": numbers | json_values,
        "model": json_values,
        "quantization": json_values,
    },
)


def _load_with_sidecar(work, text):
    model = work["int8"]
    model.with_suffix(".json").write_text(text)
    return outcome(load_model, model, 1, FAST)


def _usable(model):
    """A loaded model draws a frame: finite input table, whole colours, one name per class."""
    info = model.info
    assert np.isfinite(np.asarray(model.input_lut, np.float64)).all()
    assert len(info.colors) == len(info.class_names) and all(0 <= v <= 255 for c in info.colors for v in c)
    assert all(s > 0 and math.isfinite(s) for s in info.std)
    frame = draw_frame(0)[0]
    result = postprocess(model.runner.run(preprocess(frame, model)), info, 3, 0.5)
    image = render(frame, result, info, colour_table(info), "overlay", 0.5)
    assert image.shape[:2] == frame.shape[:2]
    model.close()


@SOME
@given(sidecars)
def test_any_sidecar_json_loads_a_usable_model_or_is_one_line(work, sidecar):
    result = _load_with_sidecar(work, json.dumps(sidecar))
    if not isinstance(result, EdgeError):
        _usable(result)


@SOME
@given(st.binary(max_size=200) | json_values.map(json.dumps))
def test_any_sidecar_bytes_load_a_usable_model_or_are_one_line(work, data):
    path = work["int8"].with_suffix(".json")
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    result = outcome(load_model, work["int8"], 1, FAST)
    if not isinstance(result, EdgeError):
        _usable(result)


# ---------------------------------------------------------------- label files (--labels)

one_line_names = st.text(min_size=1, max_size=15).filter(lambda n: n.strip() == n and len(n.splitlines()) == 1)


@MANY
@given(st.lists(one_line_names, min_size=1, max_size=8), st.sampled_from(["{i} {n}", "{i}: {n}", "{n}"]))
def test_label_lines_read_back_the_names_written(names, pattern):
    text = "\n".join(pattern.format(i=i, n=n) for i, n in enumerate(names)) + "\n"
    assert label_lines(text) == names or (pattern == "{n}" and len(label_lines(text)) == len(names))


@SOME
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_label_file_gives_one_name_per_class(work, data):
    work["labels"].write_bytes(data)
    model = outcome(load_model, work["classifier"], 1, Overrides(labels=str(work["labels"]), runtime="interpreter"))
    assert not isinstance(model, EdgeError), model
    assert len(model.info.class_names) == model.info.num_classes == len(NAMES)
    _usable(model)


# ---------------------------------------------------------------- packed labels and metadata (metadata.py)


@pytest.fixture(scope="module")
def packed(work):
    """The packed classifier's bytes, where its metadata flatbuffer starts and where its zip archive starts."""
    data = work["packed"].read_bytes()
    metadata_at = data.index(b"M001") - 4
    return data, metadata_at, data.rindex(b"PK\x03\x04")


@MANY
@given(st.data())
def test_damaged_metadata_or_archive_reads_or_is_one_line(work, packed, data):
    whole, metadata_at, zip_at = packed
    region = data.draw(st.sampled_from([(metadata_at, zip_at), (zip_at, len(whole))]))
    damage = data.draw(st.lists(st.tuples(st.integers(*region), st.integers(0, 255)), min_size=1, max_size=8))
    changed = bytearray(whole)
    for at, value in damage:
        changed[min(at, len(whole) - 1)] = value
    cut = data.draw(st.none() | st.integers(zip_at, len(whole)))
    work["scratch"].write_bytes(bytes(changed[:cut]))
    result = outcome(read_metadata, work["scratch"])
    if not isinstance(result, EdgeError):
        assert all(isinstance(n, str) for n in (*result.output_labels, *result.other_labels))
        assert all(math.isfinite(v) for v in (*result.mean, *result.std))


@MANY
@given(st.binary(max_size=400))
def test_any_bytes_read_as_metadata_or_one_line(work, data):
    work["scratch"].write_bytes(data)
    outcome(read_metadata, work["scratch"])


# ---------------------------------------------------------------- .tflite files truncated anywhere


@MANY
@given(st.sampled_from(["int8", "classifier", "packed"]), st.floats(0, 1, exclude_max=True))
def test_a_truncated_model_is_refused_in_one_line(work, name, share):
    whole = work[name].read_bytes()
    cut = int(share * len(whole))
    work["scratch"].write_bytes(whole[:cut])
    result = outcome(load_model, work["scratch"], 1, FAST)
    if not isinstance(result, EdgeError):  # only the packed file's zip tail may be cut with the model whole
        assert name == "packed" and cut >= whole.rindex(b"PK\x03\x04")
        result.close()
