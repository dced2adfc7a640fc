"""The charger setup page's data: what to enter in the charger, what it told us about itself,
what it can do, and why a connection was refused.

Refused handshakes are read from notifications of kind `handshake_refused` (the OCPP server
publishes them; see docs/web.md); a charger password is never part of any answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from v2g_gateway.web import words
from v2g_gateway.web.testdischarge import DischargeTests
from v2g_gateway.web.views import Sources

REFUSED_KIND = "handshake_refused"
PROFILES = {
    1: "1: basic auth (identity and password) over plain ws://; only on a wire you trust",
    2: "2: basic auth over TLS (wss://); the charger checks the gateway's certificate",
    3: "3: TLS with a client certificate whose CN is the charger's identity",
}


def _host_for_urls(configured: str, request_host: str | None) -> str:
    """The address to put in the charger: the configured one, or the one this browser used to
    reach the Pi (the charger is on the same network) when the server listens on every address."""
    if configured not in ("0.0.0.0", "::", ""):
        return configured
    host = (request_host or "").strip()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else (host or "<this machine's address>")


def refused_handshakes(src: Sources, limit: int = 10) -> list[dict[str, Any]]:
    tz, now = src.cfg.gateway.tz, src.clock.now()
    out = []
    for n in src.store.recent_notifications(200):
        if n["kind"] != REFUSED_KIND:
            continue
        data = n.get("data") or {}
        out.append(
            {
                "at": n["at"],
                "when": words.local(datetime.fromisoformat(n["at"]), tz, now),
                "identity": data.get("identity") or data.get("charger_id"),
                "reason": data.get("reason") or n["message"],
                "remote": data.get("address") or data.get("remote"),
                "message": n["message"],
            }
        )
        if len(out) >= limit:
            break
    return out


def setup_view(src: Sources, tests: DischargeTests, request_host: str | None) -> dict[str, Any]:
    cfg, now = src.cfg, src.clock.now()
    oc = cfg.ocpp
    scheme = "ws" if oc.security_profile == 1 else "wss"
    host = _host_for_urls(oc.host, request_host)
    port = src.ocpp_port() or oc.port
    base = f"{scheme}://{host}:{port}/ocpp"
    refused = refused_handshakes(src)
    chargers = []
    for c in cfg.chargers:
        st = src.store.charger_state(c.id)
        test = tests.results.get(c.id)
        chargers.append(
            {
                "charger_id": c.id,
                "enabled": c.enabled,
                "csms_url": base,
                "full_url": f"{base}/{c.id}",
                "online": bool(st and st.online),
                "last_seen": None
                if st is None or st.last_seen is None
                else st.last_seen.isoformat(),
                "last_seen_text": None if st is None else words.age(st.last_seen, now),
                "vendor": st.vendor if st else None,
                "model": st.model if st else None,
                "serial": st.serial if st else None,
                "firmware": st.firmware if st else None,
                "booted_at": None
                if st is None or st.booted_at is None
                else st.booted_at.isoformat(),
                "supports_discharge": None if st is None else st.supports_discharge,
                "capabilities": {} if st is None else dict(st.capabilities),
                "max_charge_w": c.max_charge_w,
                "max_discharge_w": c.max_discharge_w,
                "password": "set in the config (not shown)"
                if (c.password or c.password_file or c.credential)
                else "none",
                "refused": [r for r in refused if r["identity"] == c.id],
                "test_discharge": None if test is None else test.json(),
            }
        )
    known = {c.id for c in cfg.chargers}
    return {
        "security_profile": oc.security_profile,
        "security_text": PROFILES[oc.security_profile],
        "csms_url": base,
        "chargers": chargers,
        "refused_unknown": [r for r in refused if r["identity"] not in known],
        "refused_source": REFUSED_KIND,
    }
