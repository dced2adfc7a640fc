"""A local stand-in for the day-ahead price APIs, serving recorded responses over real HTTP.

Paths and query parameters are those of the real services, so the gateway's sources run
unchanged against it (set `[prices] base_url`). With `shift_to` every recording is moved by whole
days so its first delivery day becomes that date (the demo's "today"); UTC times keep their
clock time, so a recording from another DST season is an hour off in local time.

    ENTSO-E            GET  /api?documentType=A44&in_Domain=..&periodStart=..&securityToken=..
    Nord Pool          GET  /api/DayAheadPrices?date=..&deliveryArea=..&currency=..
                       GET  /api/DayAheadPriceIndices?date=..&indexNames=..
    Energi Data Svc    GET  /dataset/DayAheadPrices?start=..&end=..&filter=..   (from recordings)
                       POST /v1/graphql                                          (old recording)
    aWATTar            GET  /v1/marketdata?start=ms&end=ms
    Octopus            GET  /v1/products/{p}/electricity-tariffs/{t}/standard-unit-rates/
    any recording      GET  /recorded/{path below root}
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

_BRUSSELS = ZoneInfo("Europe/Brussels")
_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d])")
_MS = re.compile(r'("(?:start|end)_timestamp"\s*:\s*)(\d+)')
_EIC = re.compile(r"<in_Domain\.mRID[^>]*>([^<]+)<")
_START = re.compile(r"<start>([^<]+)</start>")
_END = re.compile(r"<end>([^<]+)</end>")
_FIRST_KEYS = re.compile(r'"(?:deliveryStart|HourUTC|TimeUTC|valid_from)"\s*:\s*"([^"]+)"')
_ACK = """<?xml version="1.0" encoding="UTF-8"?>
<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
  <mRID>sim</mRID><createdDateTime>{now}</createdDateTime>
  <Reason><code>999</code><text>No matching data found for Data item Day-ahead Prices [12.1.D] ({start} - {end})</text></Reason>
</Acknowledgement_MarketDocument>
"""


@dataclass
class Fault:
    status: int
    body: bytes
    content_type: str = "text/plain"


@dataclass
class Recording:
    path: Path
    provider: str
    text: str
    delta: timedelta = field(default=timedelta(0))


def _iso(value: str) -> datetime:
    t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _first_day(provider: str, text: str) -> date | None:
    """The first delivery day (Brussels) of a recording, for shifting it."""
    if provider == "awattar":
        m = _MS.search(text)
        return (
            datetime.fromtimestamp(int(m.group(2)) / 1000, UTC).astimezone(_BRUSSELS).date()
            if m
            else None
        )
    if provider == "entsoe":
        m = _START.search(text)
        return _iso(m.group(1)).astimezone(_BRUSSELS).date() if m else None
    stamps = _FIRST_KEYS.findall(text)
    if not stamps:
        return None
    return min(_iso(s) for s in stamps).astimezone(_BRUSSELS).date()


def _shift(provider: str, text: str, delta: timedelta) -> str:
    if not delta:
        return text

    def day(m: re.Match[str]) -> str:
        d = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + delta
        return d.isoformat()

    out = _DATE.sub(day, text)
    if provider == "awattar":
        ms = int(delta.total_seconds() * 1000)
        out = _MS.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + ms}", out)
    return out


class PriceServer:
    """Run with `with PriceServer(root) as srv:`; `srv.url` is http://127.0.0.1:<port>."""

    def __init__(
        self,
        root: Path,
        token: str = "sim-token",
        shift_to: date | None = None,
        page_size: int = 100,
    ) -> None:
        self.root = Path(root)
        self.token = token
        self.page_size = page_size
        self.requests: list[str] = []
        self._faults: list[Fault] = []
        self._chosen: dict[str, str] = {}
        self._lock = threading.Lock()
        self.recordings: list[Recording] = []
        for p in sorted(self.root.rglob("*")):
            if p.suffix not in (".xml", ".json") or not p.is_file():
                continue
            provider = p.relative_to(self.root).parts[0]
            text = p.read_text(encoding="utf-8")
            rec = Recording(p, provider, text)
            first = _first_day(provider, text)
            if shift_to is not None and first is not None:
                rec.delta = shift_to - first
                rec.text = _shift(provider, text, rec.delta)
            self.recordings.append(rec)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ control

    def use(self, provider: str, name: str) -> None:
        """Serve this recording (file name) for `provider` whatever the parameters ask."""
        self._chosen[provider] = name

    def fail_next(
        self, status: int, body: bytes = b"", times: int = 1, content_type: str = "text/plain"
    ) -> None:
        with self._lock:
            self._faults.extend(Fault(status, body, content_type) for _ in range(times))

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> PriceServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> PriceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ routing

    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(req.path)
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.requests.append(f"{method} {parts.path}")
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            return self._send(req, fault.status, fault.body, fault.content_type)
        path = parts.path
        try:
            if path.startswith("/recorded/"):
                rec = self._by_rel(path.removeprefix("/recorded/"))
                if rec is None:
                    return self._send(req, 404, b"no such recording")
                return self._send(req, 200, rec.text.encode(), _ctype(rec))
            if path == "/api":
                return self._entsoe(req, q)
            if path in ("/api/DayAheadPrices", "/api/DayAheadPriceIndices"):
                return self._nordpool(req, q, indices=path.endswith("Indices"))
            if path == "/dataset/DayAheadPrices" or path == "/dataset/Elspotprices":
                return self._eds_rest(req, q, path.rsplit("/", 1)[-1])
            if path == "/v1/graphql":
                return self._one(req, "energidataservice")
            if path == "/v1/marketdata":
                return self._awattar(req, q)
            if path.startswith("/v1/products/") and path.endswith("/standard-unit-rates/"):
                return self._octopus(req, q, path)
        except (ValueError, KeyError) as exc:
            return self._send(req, 400, f"bad request: {exc}".encode())
        return self._send(req, 404, b"not found")

    def _send(
        self, req: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "text/plain"
    ) -> None:
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def _by_rel(self, rel: str) -> Recording | None:
        return next(
            (r for r in self.recordings if r.path.relative_to(self.root).as_posix() == rel), None
        )

    def _of(self, provider: str) -> list[Recording]:
        recs = [r for r in self.recordings if r.provider == provider]
        if provider in self._chosen:
            recs = [r for r in recs if r.path.name == self._chosen[provider]]
        return recs

    def _one(self, req: BaseHTTPRequestHandler, provider: str) -> None:
        recs = self._of(provider)
        if not recs:
            return self._send(req, 404, b"no recording")
        return self._send(req, 200, recs[0].text.encode(), _ctype(recs[0]))

    def _entsoe(self, req: BaseHTTPRequestHandler, q: dict[str, str]) -> None:
        if q.get("securityToken") != self.token:
            body = b"<html><body><h1>401 Unauthorized</h1></body></html>"
            return self._send(req, 401, body, "text/html")
        if q.get("documentType") != "A44":
            raise ValueError("only documentType=A44 is simulated")
        start = datetime.strptime(q["periodStart"], "%Y%m%d%H%M").replace(tzinfo=UTC)
        end = datetime.strptime(q["periodEnd"], "%Y%m%d%H%M").replace(tzinfo=UTC)
        best: tuple[float, Recording] | None = None
        for rec in self._of("entsoe"):
            m = _EIC.search(rec.text)
            if m is None or (m.group(1) != q.get("in_Domain") and "entsoe" not in self._chosen):
                continue
            starts = [_iso(s) for s in _START.findall(rec.text)]
            ends = [_iso(s) for s in _END.findall(rec.text)]
            lo, hi = max(min(starts), start), min(max(ends), end)
            overlap = (hi - lo).total_seconds()
            if overlap > 0 and (best is None or overlap > best[0]):
                best = (overlap, rec)
        if best is None:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = _ACK.format(now=now, start=q["periodStart"], end=q["periodEnd"]).encode()
            return self._send(req, 200, body, "application/xml")
        return self._send(req, 200, best[1].text.encode(), "application/xml")

    def _nordpool(self, req: BaseHTTPRequestHandler, q: dict[str, str], indices: bool) -> None:
        area = q.get("indexNames" if indices else "deliveryArea", "")
        key, list_key = (
            ("indexNames", "multiIndexEntries")
            if indices
            else ("deliveryAreas", "multiAreaEntries")
        )
        for rec in self._of("nordpool"):
            doc = json.loads(rec.text)
            if list_key not in doc:
                continue
            if "nordpool" not in self._chosen and (
                area not in doc.get(key, []) or doc.get("deliveryDateCET") != q.get("date")
            ):
                continue
            if q.get("currency") and q["currency"] != doc.get("currency"):
                continue  # real API would convert; the simulator has no rates
            return self._send(req, 200, rec.text.encode(), "application/json")
        return self._send(req, 204, b"")

    def _eds_rest(self, req: BaseHTTPRequestHandler, q: dict[str, str], dataset: str) -> None:
        """Current REST format built from the recorded GraphQL prices (same values, EUR only)."""
        areas = json.loads(q.get("filter", "{}")).get("PriceArea", ["DK1"])
        start = _iso(q["start"]) if "start" in q else datetime.min.replace(tzinfo=UTC)
        end = _iso(q["end"]) if "end" in q else datetime.max.replace(tzinfo=UTC)
        records: list[dict[str, Any]] = []
        tkey, pkey = (
            ("TimeUTC", "DayAheadPrice")
            if dataset == "DayAheadPrices"
            else ("HourUTC", "SpotPrice")
        )
        for rec in self._of("energidataservice"):
            for row in json.loads(rec.text)["data"]["elspotprices"]:
                t = _iso(row["HourUTC"])
                if not start <= t < end:
                    continue
                for area in areas:
                    local = t.astimezone(ZoneInfo("Europe/Copenhagen")).replace(tzinfo=None)
                    records.append(
                        {
                            tkey: t.replace(tzinfo=None).isoformat(),
                            tkey.replace("UTC", "DK"): local.isoformat(),
                            "PriceArea": area,
                            f"{pkey}DKK": None,
                            f"{pkey}EUR": row["SpotPriceEUR"],
                        }
                    )
        records.sort(key=lambda r: r[tkey], reverse="desc" in q.get("sort", "").lower())
        body = {"total": len(records), "limit": 0, "dataset": dataset, "records": records}
        return self._send(req, 200, json.dumps(body).encode(), "application/json")

    def _awattar(self, req: BaseHTTPRequestHandler, q: dict[str, str]) -> None:
        start = int(q.get("start", "0"))
        end = int(q.get("end", str(2**62)))
        data: list[dict[str, Any]] = []
        for rec in self._of("awattar"):
            doc = json.loads(rec.text)
            data += [
                e for e in doc["data"] if e["end_timestamp"] > start and e["start_timestamp"] < end
            ]
        body = {"object": "list", "data": data, "url": "/v1/marketdata"}
        return self._send(req, 200, json.dumps(body).encode(), "application/json")

    def _octopus(self, req: BaseHTTPRequestHandler, q: dict[str, str], path: str) -> None:
        recs = self._of("octopus")
        if "octopus" not in self._chosen:
            recs = sorted(recs, key=lambda r: len(r.text), reverse=True)[:1]
        lo = _iso(q["period_from"]) if "period_from" in q else None
        hi = _iso(q["period_to"]) if "period_to" in q else None
        rows = [
            r
            for rec in recs
            for r in json.loads(rec.text)["results"]
            if (lo is None or _iso(r["valid_to"]) > lo)
            and (hi is None or _iso(r["valid_from"]) < hi)
        ]
        rows.sort(key=lambda r: r["valid_from"], reverse=True)
        page = int(q.get("page", "1"))
        chunk = rows[(page - 1) * self.page_size : page * self.page_size]
        nxt = None
        if page * self.page_size < len(rows):
            nxt = f"{self.url}{path}?{urlencode({**q, 'page': str(page + 1)})}"
        prev = f"{self.url}{path}?{urlencode({**q, 'page': str(page - 1)})}" if page > 1 else None
        body = {"count": len(rows), "next": nxt, "previous": prev, "results": chunk}
        return self._send(req, 200, json.dumps(body).encode(), "application/json")


def _ctype(rec: Recording) -> str:
    return "application/xml" if rec.path.suffix == ".xml" else "application/json"
