"""A loopback HTTP server for the remote tests: serves a directory on 127.0.0.1, with or
without byte ranges, refusing chosen paths (403), counting requests, and with injected faults
(Faults: 500s, dropped connections, delays, short and over-long range bodies)."""

from __future__ import annotations

import http.server
import os
import re
import threading
import time
from dataclasses import dataclass
from functools import partial


@dataclass
class Faults:
    """Faults for GETs of paths starting with ``only``: the next ``status500`` answer 500, the
    next ``drop`` close the connection unanswered; every one waits ``delay`` seconds first; a
    ranged (206) body loses its last ``short`` bytes or gains ``long`` bytes of junk."""

    only: str = "/"
    status500: int = 0
    drop: int = 0
    delay: float = 0.0
    short: int = 0
    long: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()

    def take(self, what: str) -> bool:
        with self._lock:
            left = getattr(self, what)
            if left > 0:
                setattr(self, what, left - 1)
                return True
            return False


class Gauge:
    """The GETs being answered at once (``with gauge:`` around each), and the most there were."""

    def __init__(self):
        self._lock = threading.Lock()
        self.now = self.peak = 0

    def __enter__(self):
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc):
        with self._lock:
            self.now -= 1


class _Handler(http.server.SimpleHTTPRequestHandler):
    ranges = True
    forbidden: tuple[str, ...] = ()
    faults: Faults | None = None
    log: list

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 -- the http.server API
        self.log.append((self.command, self.path, self.headers.get("Range")))
        with self.gauge:
            self._get()

    def _get(self):
        if any(self.path.startswith(p) for p in self.forbidden):
            self.send_error(403)
            return
        faults = self.faults if self.faults is not None and self.path.startswith(self.faults.only) else None
        if faults is not None:
            time.sleep(faults.delay)
            if faults.take("drop"):
                self.close_connection = True
                return
            if faults.take("status500"):
                self.send_error(500)
                return
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            body = f.read()
        rng = self.headers.get("Range") if self.ranges else None
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng or "")
        if m:
            lo, hi = m.groups()
            if lo == "":  # suffix
                start, end = max(0, len(body) - int(hi)), len(body)
            else:
                start, end = int(lo), (int(hi) + 1 if hi else len(body))
            part = body[start:end]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{start + len(part) - 1}/{len(body)}")
            body = part
            if faults is not None and faults.short:
                body = body[:max(0, len(body) - faults.short)]
            if faults is not None and faults.long:
                body = body + b"\x5a" * faults.long
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802
        self.log.append((self.command, self.path, None))
        path = self.translate_path(self.path)
        if any(self.path.startswith(p) for p in self.forbidden):
            self.send_error(403)
            return
        if not os.path.isfile(path):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(path)))
        if self.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()


class Server:
    """``with Server(root, ranges=False) as s: s.url + "/x.zarr"``; s.log lists the requests,
    s.gauge.peak is the most GETs that were answered at once."""

    def __init__(self, root, ranges: bool = True, forbidden: tuple[str, ...] = (), faults: Faults | None = None):
        self.log: list = []
        self.gauge = Gauge()
        handler = type("H", (_Handler,), {"ranges": ranges, "forbidden": forbidden, "faults": faults,
                                          "log": self.log, "gauge": self.gauge})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
