"""``--serve HOST:PORT``: the live overlay as MJPEG plus the stats, for a device with no screen.

Standard library only (``http.server`` in a background thread). Routes: ``/`` the page,
``/stream.mjpg`` the overlay stream, ``/frame.jpg`` the latest frame, ``/stats.json`` the timings.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from edge_app.errors import EdgeError

BOUNDARY = "gardenframe"
JPEG_QUALITY = 80

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
<div class="row"><img id="live" src="/frame.jpg" alt="live overlay">
<table id="stats"><tr><th>stage</th><th>ms (median)</th></tr></table></div>
<script>
window.addEventListener("load", () => {{ document.getElementById("live").src = "/stream.mjpg"; }});
async function refresh() {{
  try {{
    const s = await (await fetch("/stats.json", {{cache: "no-store"}})).json();
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
    """``HOST:PORT`` or ``PORT`` -> (host, port); the host defaults to 127.0.0.1 (this device only)."""
    host, _, port = str(text).rpartition(":")
    try:
        port = int(port)
    except ValueError:
        raise EdgeError(f"--serve {text!r}: give HOST:PORT such as 127.0.0.1:8080") from None
    if not 0 <= port <= 65535:
        raise EdgeError(f"--serve {text!r}: port must be 0-65535")
    return (host or "127.0.0.1").strip("[]"), port


class FrameServer:
    """Holds the latest JPEG and stats; serves them to any number of browsers."""

    def __init__(self, address, title="live"):
        self.condition = threading.Condition()
        self.jpeg, self.stats, self.sequence, self.closed = None, {"fps": 0.0, "frames": 0, "stages": {}}, 0, False
        self.page = PAGE.format(title=title).encode()
        try:
            self.httpd = ThreadingHTTPServer(address, _handler(self))
        except OSError as error:
            raise EdgeError(f"cannot serve on {address[0]}:{address[1]}: {error.strerror or error}") from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self):
        self.thread.start()
        return self

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


def _handler(server):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep the terminal for the app's own lines
            pass

        def do_GET(self):
            path = self.path.split("?")[0]
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
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler
