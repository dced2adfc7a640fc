"""Reading the config file: TOML to validated models, relative paths, credentials bound to files.

Every problem becomes a ConfigError naming file, key and what is wrong; `config_problems` gives
all of them at once for `config check`, `load_config` the first (the daemon stops on it anyway).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from v2g_gateway.credentials import credential_path
from v2g_gateway.errors import ConfigError

if TYPE_CHECKING:
    from v2g_gateway.config import Config

_SECRET_WORDS = ("password", "token", "secret")


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _problem(source: str, err: Any) -> ConfigError:
    from v2g_gateway.config import _RefError

    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, _RefError):
        return ConfigError(source, ctx_err.key, ctx_err.problem)
    loc = tuple(p for p in err["loc"] if p not in ("function-after",))
    key = _loc(loc) or None
    kind = err["type"]
    if kind == "extra_forbidden":
        return ConfigError(
            source, key, "unknown key (check spelling; see config/gateway.example.toml)"
        )
    if kind == "missing":
        return ConfigError(source, key, "required key is missing")
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    secret = key is not None and any(w in key for w in _SECRET_WORDS)
    if kind != "model_type" and not secret and not isinstance(value, dict | list):
        msg = f"{msg} (got {value!r})"
    return ConfigError(source, key, msg)


def _first_problem(source: str, exc: ValidationError) -> ConfigError:
    errors = exc.errors(include_url=False)
    first = _problem(source, errors[0])
    more = len(errors) - 1
    if more:
        suffix = f" (+{more} more problem{'s' if more > 1 else ''}; 'config check' lists all)"
        return ConfigError(source, first.key, first.problem + suffix)
    return first


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    from v2g_gateway.config import Config

    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise _first_problem(source, exc) from None


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            str(p), None, "file not found (create one with 'v2g-gateway config init')"
        ) from None
    except OSError as exc:
        raise ConfigError(str(p), None, f"cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(p), None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), None, f"invalid TOML: {exc}") from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the config file; every problem becomes one ConfigError line."""
    p = Path(path)
    cfg = parse_config(read_toml(p), str(p))
    # Relative paths are relative to the config file, as a user reading it would expect.
    return bind_credentials(_resolve_paths(cfg, p.parent), str(p))


def config_problems(path: str | os.PathLike[str]) -> tuple[Config | None, list[ConfigError]]:
    """The loaded config, or every validation problem of the file (one per mistake)."""
    from v2g_gateway.config import Config

    p = Path(path)
    try:
        data = read_toml(p)
    except ConfigError as exc:
        return None, [exc]
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        return None, [_problem(str(p), e) for e in exc.errors(include_url=False)]
    try:
        return bind_credentials(_resolve_paths(cfg, p.parent), str(p)), []
    except ConfigError as exc:
        return None, [exc]


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def fix(model: BaseModel) -> BaseModel:
        updates: dict[str, Any] = {}
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, Path) and not value.is_absolute():
                updates[name] = base / value
            elif isinstance(value, BaseModel):
                fixed = fix(value)
                if fixed is not value:
                    updates[name] = fixed
            elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
                updates[name] = tuple(fix(v) for v in value)
        return model.model_copy(update=updates) if updates else model

    from v2g_gateway.config import Config

    out = fix(cfg)
    assert isinstance(out, Config)
    return out


# ---------------------------------------------------------------------- secrets


@dataclass(frozen=True, slots=True)
class SecretSlot:
    """One secret-bearing key: where its value, file and credential live in the config."""

    key: str  # e.g. "chargers[0].password", for messages
    section: str  # "chargers[0]", "mqtt", ...
    value_field: str | None  # inline value (None: only a file, like a TLS key)
    file_field: str
    credential_field: str


def secret_slots(cfg: Config) -> list[tuple[SecretSlot, BaseModel]]:
    """Every secret-bearing key with the section holding it (binding and `config check`)."""
    out: list[tuple[SecretSlot, BaseModel]] = [
        (
            SecretSlot(
                f"chargers[{i}].password",
                f"chargers[{i}]",
                "password",
                "password_file",
                "credential",
            ),
            c,
        )
        for i, c in enumerate(cfg.chargers)
    ]
    out += [
        (SecretSlot("ocpp.tls_key", "ocpp", None, "tls_key_file", "tls_key_credential"), cfg.ocpp),
        (SecretSlot("prices.token", "prices", "token", "token_file", "credential"), cfg.prices),
        (
            SecretSlot("mqtt.password", "mqtt", "password", "password_file", "credential"),
            cfg.mqtt,
        ),
        (SecretSlot("mqtt.key", "mqtt", None, "key_file", "key_credential"), cfg.mqtt),
    ]
    if cfg.web is not None:
        slot = SecretSlot("web.password", "web", "password", "password_file", "credential")
        out.append((slot, cfg.web))
    return out


def bind_credentials(cfg: Config, source: str, env: dict[str, str] | None = None) -> Config:
    """Point each `credential` at its file (systemd's copy or the credentials folder).

    Consumers then read one path whatever the secret's origin, so TLS keys given as credentials
    need no special case where the TLS context is made.
    """
    folder = cfg.gateway.credentials_dir
    updates: dict[str, dict[str, Any]] = {}
    for slot, model in secret_slots(cfg):
        name = getattr(model, slot.credential_field)
        if name is None:
            continue
        try:
            path, _ = credential_path(name, folder, env)
        except ConfigError as exc:
            raise ConfigError(
                source, f"{slot.section}.{slot.credential_field}", exc.problem
            ) from None
        updates.setdefault(slot.section, {})[slot.file_field] = path
    if not updates:
        return cfg
    top: dict[str, Any] = {}
    chargers = list(cfg.chargers)
    for section, fields in updates.items():
        if section.startswith("chargers["):
            i = int(section[len("chargers[") : -1])
            chargers[i] = chargers[i].model_copy(update=fields)
        else:
            top[section] = getattr(cfg, section).model_copy(update=fields)
    top["chargers"] = tuple(chargers)
    return cfg.model_copy(update=top)
