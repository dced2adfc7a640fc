"""Secrets: inline, in a file, or a credential by name, one rule for systemd and hand-runs.

`credential = "NAME"` names a file in the credentials folder beside the config
(`/etc/v2g-gateway/credentials/NAME`, root only). Under systemd the unit hands that whole folder
to the service with `LoadCredential=v2g-gateway:/etc/v2g-gateway/credentials`; systemd copies each
file into `$CREDENTIALS_DIRECTORY` as `v2g-gateway_NAME`, readable by the service's dynamic user
alone. Run by hand (no `$CREDENTIALS_DIRECTORY`), the gateway reads the folder itself, so the
same config works in both places and a missing file is one clear line either way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from v2g_gateway.errors import ConfigError

ENV = "CREDENTIALS_DIRECTORY"
# The ID of the unit's one LoadCredential= line; systemd prefixes every file of the folder with it.
UNIT_ID = "v2g-gateway"
CREDENTIALS_HINT = (
    "under systemd the unit loads the folder with "
    f"LoadCredential={UNIT_ID}:/etc/v2g-gateway/credentials"
)


def credential_path(
    name: str, folder: Path | None, env: Mapping[str, str] | None = None
) -> tuple[Path, str]:
    """Where credential `name` is read, and from what (for messages): systemd's or the folder."""
    environ = os.environ if env is None else env
    cred_dir = environ.get(ENV)
    if cred_dir:
        base = Path(cred_dir)
        plain, prefixed = base / name, base / f"{UNIT_ID}_{name}"
        # A user's own LoadCredential=NAME:... line gives the plain name; the folder, the prefix.
        return (plain if plain.exists() else prefixed), f"${ENV}"
    if folder is None:
        raise ConfigError(
            "config", None, f"credential {name!r} given but ${ENV} is not set (not under systemd)"
        )
    return folder / name, "credentials folder"


def read_secret(
    source: str, key: str, value: str | None, file: Path | None, credential: str | None
) -> str | None:
    """A secret given inline, in a file, or as a credential; None when none is configured.

    After `load_config` a credential's file is already resolved (`file` is set); a config made
    by `parse_config` resolves it here from `$CREDENTIALS_DIRECTORY` only.
    """
    if value is not None:
        return value
    path = file
    if credential is not None and path is None:
        if not os.environ.get(ENV):
            raise ConfigError(source, key, f"credential {credential!r} given but ${ENV} is not set")
        path, _ = credential_path(credential, None)
    if path is None:
        return None
    what = f"credential {credential!r} ({path})" if credential is not None else str(path)
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        hint = f"; {CREDENTIALS_HINT}" if credential is not None else ""
        raise ConfigError(source, key, f"{what} does not exist{hint}") from None
    except OSError as exc:
        hint = f" ({CREDENTIALS_HINT})" if credential is not None else ""
        raise ConfigError(source, key, f"cannot read {what}: {exc.strerror}{hint}") from None
    except UnicodeDecodeError:
        raise ConfigError(source, key, f"{what} is not UTF-8 text") from None
    if not secret:
        raise ConfigError(source, key, f"{what} is empty")
    return secret
