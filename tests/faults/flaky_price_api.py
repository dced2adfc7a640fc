"""A tiny aWATTar-shaped HTTP API on 127.0.0.1 whose failure mode a test switches at will.

Modes: "ok" (hourly prices for the asked range), "500", "timeout" (holds the request until the
test ends or the mode changes), "garbage" (200 with bytes that are not JSON), "wrong" (valid JSON
of the wrong shape). Every request is recorded with the time the gateway's clock showed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOUR_MS = 3_600_000


class FlakyPriceApi:
    def __init__(self, now: Callable[[], datetime], price_eur_mwh: float = 250.0) -> None:
        self.mode = "ok"
        self.price = price_eur_mwh
        self.requests: list[tuple[datetime, str]] = []  # (clock time, mode answered)
        self.now = now
        self._release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode != "timeout":
            self._release.set()
        else:
            self._release.clear()

    def close(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        self.requests.append((self.now(), mode))
        if mode == "timeout":
            self._release.wait(30)
            return
        if mode == "500":
            return self._send(req, 500, b"internal server error")
        if mode == "garbage":
            return self._send(req, 200, b"\x00\xff<html>not json", "application/json")
        if mode == "wrong":
            return self._send(req, 200, b'{"data": [{"start_timestamp": "soon"}]}')
        q = {k: v[-1] for k, v in parse_qs(urlsplit(req.path).query).items()}
        start, end = int(q["start"]), int(q["end"])
        start -= start % HOUR_MS
        data = [
            {
                "start_timestamp": t,
                "end_timestamp": t + HOUR_MS,
                "marketprice": self.price,
                "unit": "Eur/MWh",
            }
            for t in range(start, end, HOUR_MS)
        ]
        self._send(req, 200, json.dumps({"object": "list", "data": data}).encode())

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "application/json"
    ) -> None:
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)
