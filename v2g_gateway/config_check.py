"""`config check`: every mistake `run` would stop on, one line each, before it stops on one.

The checks are independent functions of one CheckContext, each yielding Findings; CHECKS lists
them in output order and `@check` adds one (another module may register its own). A Finding of
level "error" is something `run` refuses too: the daemon runs the same checks at start
(`purpose="start"`), so the two cannot disagree. Warnings and notes are for the person reading.
"""

from __future__ import annotations

import os
import ssl
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from v2g_gateway.config import WEEKDAYS, Config, TariffPeriod
from v2g_gateway.config_init import SAMPLE_EXPORT_PER_KWH, SAMPLE_IMPORT_PER_KWH
from v2g_gateway.config_load import secret_slots
from v2g_gateway.credentials import CREDENTIALS_HINT, ENV, read_secret
from v2g_gateway.errors import ConfigError, GatewayError

Level = Literal["error", "warning", "note"]
Purpose = Literal["check", "start"]
MAX_GAP_LINES = 8


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    key: str | None
    message: str

    def line(self, source: str) -> str:
        where = f"{source}: {self.key}" if self.key else source
        tag = "" if self.level == "error" else f"{self.level}: "
        return f"{where}: {tag}{self.message}"


@dataclass(frozen=True, slots=True)
class CheckContext:
    cfg: Config
    path: Path  # the config file
    purpose: Purpose = "check"
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    euid: int = field(default_factory=os.geteuid)


Check = Callable[[CheckContext], Iterable[Finding]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register a check; it runs after the ones registered before it."""
    CHECKS.append(fn)
    return fn


def run_checks(ctx: CheckContext, checks: Iterable[Check] | None = None) -> list[Finding]:
    out: list[Finding] = []
    for fn in CHECKS if checks is None else checks:
        try:
            out.extend(fn(ctx))
        except GatewayError as exc:  # a check that trips over the config reports it, no more
            out.append(
                Finding("error", getattr(exc, "key", None), getattr(exc, "problem", str(exc)))
            )
    return out


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]


# ---------------------------------------------------------------------- helpers


def _file_problem(path: Path) -> str | None:
    """Why the running user cannot read `path`, or None."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"cannot reach {path}: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if not os.access(path, os.R_OK):
        return f"cannot read {path}: Permission denied"
    return None


def _closed_to_others(path: Path) -> str | None:
    """Why a user with no relation to the owners (systemd's DynamicUser) cannot read `path`."""
    try:
        mode = path.stat().st_mode
        if not mode & stat.S_IROTH:
            return f"{path} is readable only by its owner (mode {stat.S_IMODE(mode):04o})"
        for p in path.resolve().parents:
            if not p.stat().st_mode & stat.S_IXOTH:
                return f"{path}: a folder above it is closed to other users ({p})"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    return None


def _plain_files(cfg: Config) -> list[tuple[str, Path]]:
    """Files the gateway opens that hold no secret, where the config makes it open them."""
    out: list[tuple[str, Path]] = []
    oc = cfg.ocpp
    if oc.security_profile >= 2 and oc.tls_cert_file is not None:
        out.append(("ocpp.tls_cert_file", oc.tls_cert_file))
    if oc.security_profile == 3 and oc.tls_ca_file is not None:
        out.append(("ocpp.tls_ca_file", oc.tls_ca_file))
    if cfg.prices.source == "csv" and cfg.prices.csv_file is not None:
        out.append(("prices.csv_file", cfg.prices.csv_file))
    m = cfg.mqtt
    if m.enabled and m.tls:
        for name in ("ca_file", "cert_file"):
            value = getattr(m, name)
            if value is not None:
                out.append((f"mqtt.{name}", value))
    return out


def _secret_used(cfg: Config, section: str) -> bool:
    if section == "ocpp":
        return cfg.ocpp.security_profile >= 2
    if section == "mqtt":
        return cfg.mqtt.enabled
    if section == "prices":
        return cfg.prices.source == "entsoe"
    if section == "web":
        return cfg.web is not None and cfg.web.enabled
    return True  # chargers


# ---------------------------------------------------------------------- checks


@check
def referenced_files(ctx: CheckContext) -> Iterable[Finding]:
    """Every file the config names must be there and readable by whoever runs `run`."""
    for key, path in _plain_files(ctx.cfg):
        problem = _file_problem(path)
        if problem:
            yield Finding("error", key, problem)
    for slot, model in secret_slots(ctx.cfg):
        if not _secret_used(ctx.cfg, slot.section):
            continue
        credential = getattr(model, slot.credential_field)
        path = getattr(model, slot.file_field)
        if path is None:
            continue
        key = f"{slot.section}.{slot.credential_field if credential else slot.file_field}"
        problem = _file_problem(path)
        if problem is not None:
            if credential is not None:
                problem = f"credential {credential!r}: {problem}; {CREDENTIALS_HINT}"
            yield Finding("error", key, problem)
            continue
        if slot.value_field is None:
            continue  # a key file: its form is checked with the certificate below
        try:
            read_secret("", key, None, path, credential)
        except ConfigError as exc:
            yield Finding("error", key, exc.problem)


@check
def charger_passwords(ctx: CheckContext) -> Iterable[Finding]:
    """Below profile 3 a charger proves itself with a password; without one it can never connect."""
    profile = ctx.cfg.ocpp.security_profile
    if profile == 3:
        return
    for i, c in enumerate(ctx.cfg.chargers):
        if c.password is None and c.password_file is None and c.credential is None:
            yield Finding(
                "error",
                f"chargers[{i}].password",
                f"security profile {profile} needs a password (credential, password_file or "
                "password)",
            )


@check
def tls_material(ctx: CheckContext) -> Iterable[Finding]:
    """The OCPP server's certificate and key must load, or the server cannot start."""
    oc = ctx.cfg.ocpp
    if oc.security_profile < 2 or oc.tls_cert_file is None or oc.tls_key_file is None:
        return
    if _file_problem(oc.tls_cert_file) or _file_problem(oc.tls_key_file):
        return  # said above
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            oc.tls_cert_file, oc.tls_key_file
        )
    except (ssl.SSLError, OSError) as exc:
        yield Finding(
            "error", "ocpp.tls_cert_file", f"certificate and key do not load together ({exc})"
        )


@check
def price_source(ctx: CheckContext) -> Iterable[Finding]:
    """A market source needs what it fetches with; a CSV file must parse."""
    p = ctx.cfg.prices
    if p.source == "entsoe" and p.token is None and p.token_file is None and p.credential is None:
        yield Finding(
            "error",
            "prices",
            "source 'entsoe' needs its security token: credential = \"entsoe-token\" (the token "
            "in credentials/entsoe-token), token_file or token (docs/prices.md)",
        )
    if p.source == "csv" and p.csv_file is not None and _file_problem(p.csv_file) is None:
        from v2g_gateway.prices.csvfile import parse_csv

        try:
            slots = parse_csv(p.csv_file.read_bytes(), p.csv_format)
        except GatewayError as exc:
            yield Finding("error", "prices.csv_file", str(exc))
            return
        if not slots:
            yield Finding("error", "prices.csv_file", f"{p.csv_file} holds no prices")


def _gaps(periods: tuple[TariffPeriod, ...]) -> list[tuple[str, str]]:
    """Uncovered (weekday-and-month set, HH:MM-HH:MM) spans over a whole year, local time."""

    def minutes(hhmm: str) -> int:
        hh, mm = hhmm.split(":")
        return int(hh) * 60 + int(mm)

    def applies(p: TariffPeriod, d: date) -> bool:
        return WEEKDAYS[d.weekday()] in p.days and d.month in p.months

    found: dict[str, set[str]] = {}
    day = date(2025, 1, 1)
    for _ in range(365):
        covered = bytearray(1440)
        for p in periods:
            s, e = minutes(p.start), minutes(p.end)
            wraps = e <= s
            if applies(p, day):
                covered[s : 1440 if wraps else e] = b"\1" * ((1440 if wraps else e) - s)
            if wraps and applies(p, day - timedelta(days=1)):
                covered[0:e] = b"\1" * e
        m = 0
        while m < 1440:
            if covered[m]:
                m += 1
                continue
            start = m
            while m < 1440 and not covered[m]:
                m += 1
            span = f"{start // 60:02d}:{start % 60:02d}-{m // 60:02d}:{m % 60:02d}"
            found.setdefault(span, set()).add(f"{WEEKDAYS[day.weekday()]}/{day.month}")
        day += timedelta(days=1)
    out: list[tuple[str, str]] = []
    for span, where in found.items():
        days = [d for d in WEEKDAYS if any(w.startswith(d + "/") for w in where)]
        months = sorted({int(w.split("/")[1]) for w in where})
        when = "every day" if len(days) == 7 else ", ".join(days)
        if len(months) < 12:
            when += " in months " + ", ".join(str(x) for x in months)
        out.append((when, span))
    return out


@check
def tariff_coverage(ctx: CheckContext) -> Iterable[Finding]:
    """Tariff periods must cover every minute of every day: a gap has no price to plan with."""
    p = ctx.cfg.prices
    tables = []
    if p.source == "tariff":
        tables.append(("prices.tariff", p.tariff))
    if p.grid_fee_tou and p.source != "tariff":
        tables.append(("prices.grid_fee_tou", p.grid_fee_tou))
    for key, periods in tables:
        gaps = _gaps(periods)
        for when, span in gaps[:MAX_GAP_LINES]:
            yield Finding("error", key, f"no period covers {span} local time, {when}")
        if len(gaps) > MAX_GAP_LINES:
            yield Finding("error", key, f"(+{len(gaps) - MAX_GAP_LINES} more gaps)")


@check
def service_can_read(ctx: CheckContext) -> Iterable[Finding]:
    """Run as root for a systemd install: can the unit's DynamicUser read what it must?"""
    if ctx.purpose != "check" or ctx.euid != 0:
        return
    why = _closed_to_others(ctx.path)
    if why:
        yield Finding(
            "warning",
            None,
            f"only root can read this file, so the systemd unit's dynamic user cannot ({why}); "
            "make it world-readable and keep secrets in credentials/ (docs/operations.md)",
        )
    for key, path in _plain_files(ctx.cfg):
        why = _closed_to_others(path) if path.exists() else None
        if why:
            yield Finding("warning", key, f"the systemd unit cannot read it: {why}")
    for slot, model in secret_slots(ctx.cfg):
        path = getattr(model, slot.file_field)
        by_file = getattr(model, slot.credential_field) is None and path is not None
        why = _closed_to_others(path) if by_file and path.exists() else None
        if why and _secret_used(ctx.cfg, slot.section):
            yield Finding(
                "warning",
                f"{slot.section}.{slot.file_field}",
                f"the systemd unit cannot read it ({why}): move it to credentials/ and name it "
                "with a credential key instead",
            )


def _open_to(path: Path) -> str | None:
    """Who besides the owner may read `path` ("group", "others", ...), or None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # missing or unreachable: said by referenced_files
    who = [w for bit, w in ((stat.S_IRGRP, "its group"), (stat.S_IROTH, "others")) if mode & bit]
    return f"{' and '.join(who)} (mode {stat.S_IMODE(mode):04o})" if who else None


def _systemd_copy(path: Path, env: Mapping[str, str]) -> bool:
    """systemd's private copy of a credential: its permissions are systemd's business."""
    cred_dir = env.get(ENV)
    if not cred_dir:
        return False
    return path.resolve().is_relative_to(Path(cred_dir).resolve())


@check
def secret_permissions(ctx: CheckContext) -> Iterable[Finding]:
    """A secret others can read is no secret: warned by `config check` and at every start."""
    inline: list[str] = []
    for slot, model in secret_slots(ctx.cfg):
        if not _secret_used(ctx.cfg, slot.section):
            continue
        if slot.value_field is not None and getattr(model, slot.value_field) is not None:
            inline.append(slot.key)
        path = getattr(model, slot.file_field)
        if path is None or _systemd_copy(path, ctx.env):
            continue
        who = _open_to(path)
        if who:
            credential = getattr(model, slot.credential_field)
            key = f"{slot.section}.{slot.credential_field if credential else slot.file_field}"
            yield Finding(
                "warning",
                key,
                f"{path} holds a secret and is readable by {who}: chmod 600 it (owned by the "
                "user that runs the gateway), or keep it in credentials/ (docs/security.md)",
            )
    who = _open_to(ctx.path) if inline else None
    if who:
        yield Finding(
            "warning",
            None,
            f"this file holds secrets inline ({', '.join(inline)}) and is readable by {who}: "
            "chmod 600 it, or move them to credentials/ (docs/security.md)",
        )


@check
def credentials_source(ctx: CheckContext) -> Iterable[Finding]:
    """Say where credentials come from, so 'works by hand, fails under systemd' is visible."""
    if ctx.purpose != "check":
        return
    names = [
        getattr(m, s.credential_field)
        for s, m in secret_slots(ctx.cfg)
        if getattr(m, s.credential_field) is not None and _secret_used(ctx.cfg, s.section)
    ]
    if not names:
        return
    where = f"${ENV}" if ctx.env.get(ENV) else f"{ctx.cfg.gateway.credentials_dir}/"
    yield Finding("note", None, f"credentials {', '.join(sorted(set(names)))} read from {where}")


def _is_sample(periods: tuple[TariffPeriod, ...]) -> bool:
    return (
        len(periods) == 1
        and periods[0].start == periods[0].end == "00:00"
        and periods[0].import_per_kwh == SAMPLE_IMPORT_PER_KWH
        and periods[0].export_per_kwh == SAMPLE_EXPORT_PER_KWH
    )


@check
def safe_defaults(ctx: CheckContext) -> Iterable[Finding]:
    """Invented prices must never discharge a car: say when V2G is off and why."""
    if ctx.purpose != "check":
        return
    cfg = ctx.cfg
    sample = cfg.prices.source == "tariff" and _is_sample(cfg.prices.tariff)
    if sample:
        yield Finding(
            "warning",
            "prices.tariff",
            "still the flat SAMPLE of config init (invented prices, no spread): the car is "
            "charged, never discharged for money; write your real prices",
        )
    if not cfg.preferences.v2g_enabled:
        yield Finding(
            "note",
            "preferences.v2g_enabled",
            "V2G is off: charging follows prices, outage backup still works; set it to true "
            "once [prices] holds your real prices",
        )
