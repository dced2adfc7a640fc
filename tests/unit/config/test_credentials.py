"""Every secret-bearing key takes `credential = "NAME"`: one rule by hand and under systemd."""

from __future__ import annotations

from pathlib import Path

import pytest

from v2g_gateway.config import load_config, read_secret
from v2g_gateway.config_load import bind_credentials, secret_slots
from v2g_gateway.credentials import credential_path
from v2g_gateway.errors import ConfigError

EVERY_SECRET = """
[gateway]
state_dir = "state"
[ocpp]
security_profile = 2
tls_cert_file = "server.pem"
tls_key_credential = "tls-key"
[[chargers]]
id = "garage"
credential = "charger-garage"
[prices]
source = "entsoe"
area = "DE-LU"
credential = "entsoe-token"
[mqtt]
tls = true
username = "v2g"
credential = "mqtt-password"
cert_file = "client.pem"
key_credential = "mqtt-key"
[web]
credential = "web-password"
"""
NAMES = {
    "chargers[0].password": "charger-garage",
    "ocpp.tls_key": "tls-key",
    "prices.token": "entsoe-token",
    "mqtt.password": "mqtt-password",
    "mqtt.key": "mqtt-key",
    "web.password": "web-password",
}


def test_every_secret_key_accepts_a_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = tmp_path / "gateway.toml"
    path.write_text(EVERY_SECRET)
    cfg = load_config(path)
    slots = {s.key: (s, m) for s, m in secret_slots(cfg)}
    assert set(slots) == set(NAMES)  # the table knows every secret the config can hold
    for key, name in NAMES.items():
        slot, model = slots[key]
        assert getattr(model, slot.credential_field) == name
        # Bound to the credentials folder beside the config: consumers read one path.
        assert getattr(model, slot.file_field) == tmp_path / "credentials" / name


def test_under_systemd_the_folder_copy_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "run"
    creds.mkdir()
    (creds / "v2g-gateway_charger-garage").write_text("from-the-unit-folder-1\n")
    (creds / "mqtt-password").write_text("own-line\n")  # LoadCredential=mqtt-password:...
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = tmp_path / "gateway.toml"
    path.write_text(EVERY_SECRET)
    cfg = load_config(path)
    c = cfg.chargers[0]
    assert read_secret("t", "k", c.password, c.password_file, c.credential) == (
        "from-the-unit-folder-1"
    )
    m = cfg.mqtt
    assert read_secret("t", "k", m.password, m.password_file, m.credential) == "own-line"
    with pytest.raises(ConfigError) as err:
        read_secret("t", "prices.token", None, cfg.prices.token_file, cfg.prices.credential)
    assert "credential 'entsoe-token'" in str(err.value)
    assert "does not exist" in str(err.value)
    assert "LoadCredential=v2g-gateway:/etc/v2g-gateway/credentials" in str(err.value)


def test_credential_path_without_a_folder_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY is not set"):
        credential_path("x", None)
    assert credential_path("x", Path("/etc/v2g-gateway/credentials"))[0] == Path(
        "/etc/v2g-gateway/credentials/x"
    )


def test_an_empty_or_unreadable_credential_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "empty"
    f.write_text("\n")
    with pytest.raises(ConfigError, match=r"credential 'empty'.* is empty"):
        read_secret("cfg", "chargers[0].password", None, f, "empty")


@pytest.mark.parametrize(
    ("section", "keys"),
    [
        ("[[chargers]]\nid = 'g'", ("password = 'a-long-random-secret'", "credential = 'c'")),
        ("[prices]\nsource = 'entsoe'\narea = 'DE-LU'", ("token = 't'", "credential = 'c'")),
        ("[mqtt]", ("password_file = 'p'", "credential = 'c'")),
        ("[mqtt]", ("key_file = 'k'", "key_credential = 'c'")),
    ],
)
def test_one_way_per_secret(tmp_path: Path, section: str, keys: tuple[str, str]) -> None:
    path = tmp_path / "g.toml"
    path.write_text(f"{section}\n{keys[0]}\n{keys[1]}\n")
    with pytest.raises(ConfigError, match="give only one of"):
        load_config(path)


def test_a_credential_name_is_a_file_name(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[[chargers]]\nid = 'g'\ncredential = '../../etc/shadow'\n")
    with pytest.raises(ConfigError, match=r"chargers\[0\].credential"):
        load_config(path)


def test_binding_leaves_inline_and_file_secrets_alone(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[[chargers]]\nid = 'g'\npassword_file = 'g.secret'\n")
    cfg = load_config(path)
    assert bind_credentials(cfg, "x") is cfg
    assert cfg.chargers[0].password_file == tmp_path / "g.secret"
