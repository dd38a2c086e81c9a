"""``--serve HOST:PORT``: the live overlay as MJPEG plus the stats, for a device with no screen.

Standard library only (``http.server`` in a background thread). Routes: ``/`` the page,
``/stream.mjpg`` the overlay stream, ``/frame.jpg`` the latest frame, ``/stats.json`` the timings.
Off the loopback address every request must carry the access token (``?token=`` or
``Authorization: Bearer``); at most ``max_clients`` connections are served at once (the others get
503) and a connection that sends or takes nothing for ``idle_timeout`` seconds is closed.
"""

import collections
import contextlib
import hmac
import html
import ipaddress
import json
import re
import secrets
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import cv2

from edge_app.errors import EdgeError

BOUNDARY = "gardenframe"
JPEG_QUALITY = 80
MAX_CLIENTS = 32  # connections served at once (each MJPEG viewer holds one)
IDLE_TIMEOUT = 10.0  # seconds a connection may send nothing (or take no data) before it is closed
MAX_LINGERING = 256  # refused connections kept open for their last second at most
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # URL-safe, so it goes into links as it is
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")  # one dot-separated part of a host name
_BUSY = b"too many viewers at once; try again later"
_REFUSED = b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
    len(_BUSY),
    _BUSY,
)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>garden-edge</title>
<style>
body {{ background: #111; color: #eee; font: 14px system-ui, sans-serif; margin: 12px; }}
img {{ width: 720px; max-width: 100%; border: 1px solid #444; display: block; }}
.row {{ display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }}
table {{ border-collapse: collapse; margin-top: 8px; }}
td, th {{ padding: 2px 10px; text-align: right; border-bottom: 1px solid #333; }}
</style></head>
<body>
<h3>garden-edge: {title}</h3>
<div class="row"><img id="live" src="/frame.jpg{query}" alt="live overlay">
<table id="stats"><tr><th>stage</th><th>ms (median)</th></tr></table></div>
<script>
window.addEventListener("load", () => {{ document.getElementById("live").src = "/stream.mjpg{query}"; }});
async function refresh() {{
  try {{
    const s = await (await fetch("/stats.json{query}", {{cache: "no-store"}})).json();
    const rows = Object.entries(s.stages || {{}}).map(([k, v]) => `<tr><td>${{k}}</td><td>${{v.toFixed(2)}}</td></tr>`);
    document.getElementById("stats").innerHTML =
      `<tr><th>stage</th><th>ms (median)</th></tr>` +
      `<tr><td>FPS</td><td>${{(s.fps || 0).toFixed(1)}}</td></tr>` + rows.join("");
  }} catch (e) {{}}
}}
setInterval(refresh, 1000); refresh();
</script>
</body></html>
"""


def parse_address(text):
    """``HOST:PORT`` or ``PORT`` -> (host, port); the host defaults to 127.0.0.1 (this device only).

    The host is an IPv4 or IPv6 address (``[::1]:8080``) or a host name; the port is 0-65535.
    """
    host, _, port = str(text).rpartition(":")
    if not port.isascii() or not port.isdigit():
        raise EdgeError(f"--serve {text!r}: give HOST:PORT such as 127.0.0.1:8080") from None
    port = int(port)
    if not 0 <= port <= 65535:
        raise EdgeError(f"--serve {text!r}: port must be 0-65535")
    host = host or "127.0.0.1"
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not (_is_ip(host) or (not bracketed and _is_host_name(host))):
        raise EdgeError(f"--serve {text!r}: {host!r} is not an IP address or host name")
    return host, port


def _is_host_name(host):
    return 0 < len(host) <= 253 and all(_HOST_LABEL.fullmatch(part) for part in host.removesuffix(".").split("."))


def _is_ip(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host):
    """True for an address only this device reaches: 127.x.x.x, ::1 or ``localhost``."""
    if host.lower().rstrip(".") == "localhost":
        return True
    return _is_ip(host) and ipaddress.ip_address(host).is_loopback


def check_token(token):
    """A ``--token`` as given, or one line saying what a token must be."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise EdgeError(
            f"--token: use 16 to 128 letters, digits, '-' or '_' (got {len(token)} characters"
            f"{'' if token.isascii() else ', not all ASCII'}); leave it out to get a random one"
        )
    return token


def access_token(host, token=None, no_auth=False):
    """The token the server asks for: ``token`` if given, none with ``no_auth`` or on loopback, else a random one."""
    if token:
        return token
    if no_auth or is_loopback(host):
        return None
    return secrets.token_urlsafe(24)


class BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_clients`` of them: a connection beyond that gets 503 at once."""

    daemon_threads = True
    request_queue_size = 128  # connections the system accepts before the app takes them (a burst of viewers)

    def __init__(self, address, handler, max_clients):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.slots = threading.BoundedSemaphore(max_clients)
        self.refused = collections.deque()  # (when, socket) of connections answered 503, closed a second later
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def _refuse(self, request):
        """Answer 503 on the accepting thread without waiting for anything.

        What the client sent is drained first and the socket is closed a second later, not at once: closing
        with unread data resets the connection, and the client would lose the 503 it was sent.
        """
        try:
            request.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                request.recv(1 << 16)
            request.sendall(_REFUSED)  # small, into an empty buffer: it does not block
            request.shutdown(socket.SHUT_WR)
        except OSError:
            request.close()
            return
        self.refused.append((time.monotonic(), request))
        while len(self.refused) > MAX_LINGERING:
            self.refused.popleft()[1].close()

    def service_actions(self):
        """Called by ``serve_forever`` between requests: close the refused connections lingering a second."""
        while self.refused and time.monotonic() - self.refused[0][0] > 1.0:
            self.refused.popleft()[1].close()

    def server_close(self):
        super().server_close()
        while self.refused:
            self.refused.popleft()[1].close()

    def handle_error(self, request, client_address):
        """A viewer that leaves or stalls is no error of the app's; anything else is one line, never a traceback."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            print(f"garden-edge: serve: {type(error).__name__}: {error}", file=sys.stderr, flush=True)


class FrameServer:
    """Holds the latest JPEG and stats; serves them to at most ``max_clients`` browsers at once.

    With a ``token`` every request must carry it (``?token=`` or ``Authorization: Bearer``), else 401.
    """

    def __init__(self, address, title="live", token=None, max_clients=MAX_CLIENTS, idle_timeout=IDLE_TIMEOUT):
        self.condition = threading.Condition()
        self.jpeg, self.stats, self.sequence, self.closed = None, {"fps": 0.0, "frames": 0, "stages": {}}, 0, False
        self.token = token
        self.query = f"?token={token}" if token else ""
        self.page = PAGE.format(title=html.escape(title), query=self.query).encode()
        try:
            self.httpd = BoundedHTTPServer(address, _handler(self, idle_timeout), max_clients)
        except (OSError, ValueError, OverflowError) as error:
            reason = getattr(error, "strerror", None) or error
            raise EdgeError(f"cannot serve on {address[0]}:{address[1]}: {reason}") from None
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/{self.query}"

    def start(self):
        self.thread.start()
        return self

    def allows(self, path, authorization):
        """True when no token is asked for, or the request's query or ``Bearer`` header carries it."""
        if self.token is None:
            return True
        given = parse_qs(urlsplit(path).query).get("token", [""])[-1]
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() == "bearer":
            given = credentials.strip()
        return hmac.compare_digest(given.encode(errors="replace"), self.token.encode())

    def publish(self, image, stats):
        """Encode ``image`` once and wake every waiting stream."""
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        with self.condition:
            self.jpeg, self.stats = jpeg.tobytes() if ok else self.jpeg, stats
            self.sequence += 1
            self.condition.notify_all()

    def wait_frame(self, seen, timeout=5.0):
        """The newest JPEG after sequence ``seen``: (sequence, jpeg), or (seen, None) on close/timeout."""
        with self.condition:
            self.condition.wait_for(lambda: self.sequence != seen or self.closed, timeout)
            if self.closed or self.sequence == seen:
                return seen, None
            return self.sequence, self.jpeg

    def close(self):
        with self.condition:
            self.closed = True
            self.condition.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server, idle_timeout):
    class Handler(BaseHTTPRequestHandler):
        timeout = idle_timeout  # on the socket: a request not sent, or a frame not taken, in time closes it

        def log_message(self, *args):  # keep the terminal for the app's own lines
            pass

        def do_GET(self):
            if not server.allows(self.path, self.headers.get("Authorization")):
                self.close_connection = True
                self._send(401, "text/plain", b"open the address garden-edge printed (with its ?token=...)")
                return
            path = urlsplit(self.path).path
            if path == "/":
                self._send(200, "text/html; charset=utf-8", server.page)
            elif path == "/stats.json":
                with server.condition:
                    body = json.dumps(server.stats).encode()
                self._send(200, "application/json", body)
            elif path == "/frame.jpg":
                _, jpeg = server.wait_frame(0 if server.jpeg is None else -1, timeout=5.0)
                jpeg = jpeg or server.jpeg
                if jpeg is None:
                    self._send(503, "text/plain", b"no frame yet")
                else:
                    self._send(200, "image/jpeg", jpeg)
            elif path == "/stream.mjpg":
                self._stream()
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, code, kind, body):
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if code == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="garden-edge"')
            self.end_headers()
            self.wfile.write(body)

        def _stream(self):
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seen = -1
            try:
                while True:
                    seen, jpeg = server.wait_frame(seen, timeout=5.0)
                    if jpeg is None:
                        if server.closed:
                            return
                        continue
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
            except OSError:  # the viewer left, or took nothing for idle_timeout seconds
                self.close_connection = True

    return Handler
