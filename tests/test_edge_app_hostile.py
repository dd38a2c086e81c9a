"""garden-edge against a hostile user and network: the guarded, bounded ``--serve`` and a table of bad inputs.

The served app runs as a user would start it (``python -m edge_app``, which imports only LiteRT, NumPy and
OpenCV) and is spoken to with the standard library's HTTP client over a real socket.
"""

import http.client
import json
import shutil
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

import numpy as np
import pytest

from helpers import assert_one_line_error, garden_edge, start_serving, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("hostile") / "shapes.mp4", frames=6)


@pytest.fixture(scope="module")
def guarded(models, clip):
    """The app serving on every interface (so a token is asked for), with its printed URL split up."""
    url, process, lines = start_serving(models["int8"], clip, "--serve", "0.0.0.0:0", "--threads", "1")
    parts = urlsplit(url)
    yield parts.port, parts.query.removeprefix("token="), url, process, lines
    if process.poll() is None:
        process.kill()


def get(port, path, headers=None, timeout=10):
    """(status, headers, body) of one GET to 127.0.0.1:``port`` (a stream's first 64 KiB)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read(1 << 16) if response.status == 200 and "stream" in path else response.read()
        return response.status, response.headers, body
    finally:
        connection.close()


def test_off_loopback_the_printed_url_carries_a_random_token(guarded):
    port, token, url, _, _ = guarded
    assert url.startswith("http://0.0.0.0:") and f"/?token={token}" in url
    assert len(token) >= 32 and token.replace("-", "").replace("_", "").isalnum()
    status, _, page = get(port, f"/?token={token}")
    assert status == 200
    assert f"/stream.mjpg?token={token}" in page.decode() and f"/stats.json?token={token}" in page.decode()


@pytest.mark.parametrize(
    "path", ["/", "/stats.json", "/frame.jpg", "/stream.mjpg", "/no/such/page", "/../../etc/passwd", "/?token="]
)
def test_every_request_without_the_token_gets_401(guarded, path):
    port, token, _, _, _ = guarded
    wrong = token[:-1] + ("a" if token[-1] != "a" else "b")
    for query, headers in (
        ("", {}),
        (f"?token={wrong}", {}),
        (f"?token={token[:-1]}", {}),
        ("", {"Authorization": f"Bearer {wrong}"}),
        ("", {"Authorization": f"Basic {token}"}),
    ):
        status, answer_headers, body = get(port, path + query, headers)
        assert status == 401, (path, query, headers)
        assert answer_headers["WWW-Authenticate"].startswith("Bearer") and b"token" in body


def test_the_token_in_the_query_or_a_bearer_header_opens_every_route(guarded):
    port, token, _, _, _ = guarded
    for _ in range(100):  # the first frames come after the model loads
        status, _, body = get(port, "/stats.json", {"Authorization": f"Bearer {token}"})
        if json.loads(body).get("frames", 0) >= 2:
            break
        time.sleep(0.1)
    assert status == 200 and json.loads(body)["stages"]["inference"] > 0
    status, headers, jpeg = get(port, f"/frame.jpg?token={token}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and jpeg[:2] == b"\xff\xd8"
    status, headers, stream = get(port, "/stream.mjpg", {"Authorization": f"bearer {token}"})
    assert status == 200 and headers["Content-Type"].startswith("multipart/x-mixed-replace")
    assert b"Content-Type: image/jpeg" in stream
    assert get(port, f"/missing?token={token}")[0] == 404


def test_guarded_app_ends_on_sigterm_with_its_summary(guarded):
    _, _, _, process, lines = guarded
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    summary = "".join(iter(lambda: lines.get(timeout=30), None))
    assert "inference" in summary and process.stderr.read() == ""


def test_no_auth_serves_the_network_openly_after_one_warning(models, clip):
    url, process, _ = start_serving(models["int8"], clip, "--serve", "0.0.0.0:0", "--no-auth", "--threads", "1")
    try:
        assert "token" not in url
        assert get(urlsplit(url).port, "/stats.json")[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("garden-edge: warning: --no-auth: anyone who reaches 0.0.0.0:")


def test_access_token_rules():
    from edge_app.serve import access_token, is_loopback

    given = "x" * 20
    assert access_token("127.0.0.1", None) is None and access_token("localhost", None) is None
    assert access_token("::1", None) is None and access_token("127.8.9.10", None) is None
    assert access_token("127.0.0.1", given) == given and access_token("0.0.0.0", given) == given
    assert access_token("0.0.0.0", None, no_auth=True) is None
    tokens = {access_token(host, None) for host in ("0.0.0.0", "192.168.1.5", "::", "pi.local")}
    assert len(tokens) == 4 and all(len(t) >= 32 for t in tokens)
    assert not is_loopback("0.0.0.0") and not is_loopback("localhost.example.com")


# ---------------------------------------------------------------- a bounded server (in this process)


@pytest.fixture
def small_server():
    """A FrameServer taking 4 connections at once, closing idle ones after 2 seconds; with one frame."""
    from edge_app.serve import FrameServer

    server = FrameServer(("127.0.0.1", 0), "bounded", token="t" * 16, max_clients=4, idle_timeout=2.0).start()
    server.publish(np.full((8, 8, 3), 99, np.uint8), {"fps": 1.0, "frames": 1, "stages": {}})
    yield server, server.httpd.server_address[1], "/stats.json?token=" + "t" * 16
    server.close()


def _until_closed(connection):
    received = b""
    while chunk := connection.recv(1 << 16):
        received += chunk
    return received


def _wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_idle_connections_hold_at_most_max_clients_threads_and_are_closed(small_server):
    _, port, stats = small_server
    before, started = threading.active_count(), time.monotonic()
    idle = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(300)]
    try:
        time.sleep(0.3)
        assert threading.active_count() - before <= 4
        status, _, body = get(port, stats)
        assert status == 503 and b"too many" in body
        answers = [_until_closed(connection) for connection in idle]
        took = time.monotonic() - started
    finally:
        for connection in idle:
            connection.close()
    held = [answer for answer in answers if not answer.startswith(b"HTTP/1.0 503")]
    assert all(answer == b"" for answer in held)  # closed after sending nothing for 2 s
    assert len(held) <= 4 * (took / 2.0 + 1) and took < 15, (len(held), took)  # each held a slot for 2 s or more
    assert _wait_for(lambda: get(port, stats)[0] == 200)
    assert _wait_for(lambda: threading.active_count() - before == 0)


def test_a_viewer_that_stops_reading_is_dropped(small_server):
    server, port, stats = small_server
    before = threading.active_count()
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect(("127.0.0.1", port))
    reader.sendall(b"GET /stream.mjpg?token=" + b"t" * 16 + b" HTTP/1.0\r\n\r\n")
    assert _wait_for(lambda: threading.active_count() == before + 1)
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)  # frames larger than the buffers
    deadline = time.monotonic() + 20
    while threading.active_count() > before and time.monotonic() < deadline:
        server.publish(noise, server.stats)
        time.sleep(0.02)
    reader.close()
    assert threading.active_count() == before, "the stalled viewer still holds its connection"
    assert get(port, stats)[0] == 200


def test_threads_are_capped_at_the_cores_there_are(capsys):
    from edge_app.__main__ import capped_threads, cores

    assert capped_threads(1) == 1 and capsys.readouterr().err == ""
    assert capped_threads(64) == min(64, cores())
    err = capsys.readouterr().err
    assert (err == "") == (cores() >= 64)
    if err:
        assert err.count("\n") == 1 and f"--threads 64 lowered to {cores()}" in err


# ---------------------------------------------------------------- a table of bad inputs


def _copy_with_sidecar(models, tmp_path, sidecar_text, name="int8"):
    model = tmp_path / "m.tflite"
    shutil.copy(models[name], model)
    model.with_suffix(".json").write_text(sidecar_text)
    return model


def _busy_port():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    _busy_port.holder = holder  # kept open until the next case asks for one
    return f"127.0.0.1:{holder.getsockname()[1]}"


TOKEN = "abcdefghijklmnop"
# (case, arguments given (models, video, tmp_path) -> argv, exit code, words the one line holds)
BAD_INPUTS = [
    ("no --model", lambda m, v, t: ["--source", v], 2, "the following arguments are required: --model"),
    ("unknown option", lambda m, v, t: ["--model", m["int8"], "--colour", "red"], 2, "unrecognized arguments"),
    ("--threads 999", lambda m, v, t: ["--model", m["int8"], "--threads", "999"], 2, "from 1 to 64"),
    ("--size with 3 parts", lambda m, v, t: ["--model", m["int8"], "--size", "640x480x3"], 2, "malformed size"),
    ("--mean of two", lambda m, v, t: ["--model", m["int8"], "--mean", "1,2"], 2, "one or three finite numbers"),
    ("--std 0", lambda m, v, t: ["--model", m["int8"], "--source", v, "--std", "0"], 2, "must be positive"),
    ("--mode replace=", lambda m, v, t: ["--model", m["int8"], "--mode", "replace="], 2, "replace=IMAGE"),
    ("--runtime gpu", lambda m, v, t: ["--model", m["int8"], "--runtime", "gpu"], 2, "invalid choice: 'gpu'"),
    ("--max-clients 0", lambda m, v, t: ["--model", m["int8"], "--max-clients", "0"], 2, "from 1 to 1000"),
    ("--token too short", lambda m, v, t: ["--model", "m", "--serve", "0:0", "--token", "abc"], 2, "16 to 128"),
    ("--token without --serve", lambda m, v, t: ["--model", "m", "--token", TOKEN], 2, "--token needs --serve"),
    ("--no-auth without --serve", lambda m, v, t: ["--model", "m", "--no-auth"], 2, "--no-auth needs --serve"),
    (
        "--token and --no-auth",
        lambda m, v, t: ["--model", "m", "--serve", "1:0", "--token", TOKEN, "--no-auth"],
        2,
        "give one or the other",
    ),
    ("--serve bad host", lambda m, v, t: ["--model", "m", "--serve", "my host!:80"], 2, "not an IP address or host"),
    ("--serve [::1", lambda m, v, t: ["--model", "m", "--serve", "[::1:80"], 2, "not an IP address or host"),
    ("--serve Arabic digits", lambda m, v, t: ["--model", "m", "--serve", "1.2.3.4:\u0668\u0660"], 2, "HOST:PORT"),
    (
        "--serve an address not here",
        lambda m, v, t: ["--model", m["int8"], "--source", v, "--serve", "192.0.2.1:0"],
        2,
        "cannot serve on 192.0.2.1:0",
    ),
    (
        "--serve a port in use",
        lambda m, v, t: ["--model", m["int8"], "--source", v, "--serve", _busy_port()],
        2,
        "Address already in use",
    ),
    ("--model a folder", lambda m, v, t: ["--model", t, "--source", v], 2, "is a folder"),
    ("--model missing", lambda m, v, t: ["--model", t / "none.tflite"], 2, "does not exist"),
    ("--compare missing", lambda m, v, t: ["--model", m["int8"], "--compare", t / "b.tflite"], 2, "does not exist"),
    ("--labels missing", lambda m, v, t: ["--model", m["int8"], "--labels", t / "l.txt"], 2, "cannot read it"),
    ("--labels a folder", lambda m, v, t: ["--model", m["int8"], "--labels", t], 2, "cannot read it"),
    ("sidecar not JSON", lambda m, v, t: ["--model", _copy_with_sidecar(m, t, "{")], 2, "is not valid JSON"),
    ("sidecar a list", lambda m, v, t: ["--model", _copy_with_sidecar(m, t, "[1]")], 2, "must hold a JSON object"),
    (
        "sidecar input a list",
        lambda m, v, t: ["--model", _copy_with_sidecar(m, t, '{"input": [1, 2]}')],
        2,
        "sidecar",
    ),
    (
        "sidecar colours not numbers",
        lambda m, v, t: ["--model", _copy_with_sidecar(m, t, '{"colors": [["red", 0, 0]]}')],
        2,
        "colors",
    ),
    (
        "sidecar std NaN",
        lambda m, v, t: ["--model", _copy_with_sidecar(m, t, '{"input": {"std": NaN}}')],
        2,
        "std",
    ),
    (
        "sidecar says detection",
        lambda m, v, t: ["--model", _copy_with_sidecar(m, t, '{"task": "detection"}'), "--source", v],
        2,
        "sidecar says task 'detection'",
    ),
    (
        "--mode replace=missing",
        lambda m, v, t: ["--model", m["int8"], "--mode", f"replace={t / 'no.png'}"],
        2,
        "not a readable image",
    ),
    ("--mode blur, classifier", lambda m, v, t: ["--model", m["classifier"], "--mode", "blur"], 2, "segmentation"),
    ("--output .txt", lambda m, v, t: ["--model", m["int8"], "--source", v, "--output", t / "o.txt"], 2, "suffix"),
    ("source a text file", lambda m, v, t: ["--model", m["int8"], "--source", _text(t), "--headless"], 2, "notes.txt"),
]


def _text(folder):
    path = folder / "notes.txt"
    path.write_text("not a picture")
    return path


@pytest.mark.parametrize(("case", "argv", "code", "words"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_and_a_clean_exit(models, clip, tmp_path, case, argv, code, words):
    done = garden_edge(*argv(models, clip, tmp_path), "--headless")
    assert_one_line_error(done, code, words)
    print(f"| {case} | {code} | {done.stderr.strip()} |")
