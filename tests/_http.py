"""A loopback HTTP server for the remote tests: serves a directory on 127.0.0.1, with or
without byte ranges, refusing chosen paths (403), counting requests."""

from __future__ import annotations

import http.server
import os
import re
import threading
from functools import partial


class _Handler(http.server.SimpleHTTPRequestHandler):
    ranges = True
    forbidden: tuple[str, ...] = ()
    log: list

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 -- the http.server API
        self.log.append((self.command, self.path, self.headers.get("Range")))
        if any(self.path.startswith(p) for p in self.forbidden):
            self.send_error(403)
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
    """``with Server(root, ranges=False) as s: s.url + "/x.zarr"``; s.log lists the requests."""

    def __init__(self, root, ranges: bool = True, forbidden: tuple[str, ...] = ()):
        self.log: list = []
        handler = type("H", (_Handler,), {"ranges": ranges, "forbidden": forbidden, "log": self.log})
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
