"""A local HTTP(S) server on 127.0.0.1 serving one file, misbehaving on demand.

The test sets `plan`, the behaviour of each next request in order (then "ok"):
  ok            the file, honouring `Range: bytes=N-` (206, or 416 past the end)
  drop          announces the whole (ranged) body, sends half of it, closes the connection
  500, 404      that HTTP status
  ignore_range  the whole file with 200, whatever Range asked for
  bad_range     206 for a range that starts a byte before the one asked for
  wrong_bytes   the whole file with one byte changed
  slow          answers nothing for `slow_seconds` (cut short when the server stops)
  late          waits `late_seconds`, then behaves as ok
  redirect      302 to `redirect_to`
"""
from __future__ import annotations

import http.server
import re
import ssl
import threading

FILE_NAME = "aclImdb_v1.tar.gz"


class FlakyServer:
    def __init__(self, body: bytes, tls: ssl.SSLContext | None = None):
        self.body = body
        self.plan: list[str] = []
        self.ranges: list[str | None] = []  # the Range header of every request received, in order
        self.slow_seconds = 10.0
        self.late_seconds = 0.5
        self.redirect_to = ""
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_port}/{FILE_NAME}"

    def __enter__(self) -> FlakyServer:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def next_behaviour(self, range_header: str | None) -> str:
        with self._lock:
            self.ranges.append(range_header)
            return self.plan.pop(0) if self.plan else "ok"


def _handler(server: FlakyServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            behaviour = server.next_behaviour(self.headers.get("Range"))
            if self.path != f"/{FILE_NAME}" or behaviour == "404":
                return self.send_error(404)
            if behaviour == "500":
                return self.send_error(500)
            if behaviour == "slow":
                server.stopping.wait(server.slow_seconds)
                return
            if behaviour == "late":
                server.stopping.wait(server.late_seconds)
            if behaviour == "redirect":
                self.send_response(302)
                self.send_header("Location", server.redirect_to)
                self.send_header("Content-Length", "0")
                return self.end_headers()
            body = server.body
            if behaviour == "wrong_bytes":
                middle = len(body) // 2
                body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
            start = _range_start(self.headers.get("Range"))
            drop = behaviour == "drop"
            if start is None or behaviour in ("ignore_range", "wrong_bytes"):
                return self._send(200, body, {}, drop)
            if start >= len(body):
                return self.send_error(416)
            if behaviour == "bad_range":
                start = max(start - 1, 0)
            self._send(206, body[start:], {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}, drop)

        def _send(self, status: int, body: bytes, headers: dict[str, str], drop: bool) -> None:
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if drop else body)

    return Handler


def _range_start(header: str | None) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match[1]) if match else None
