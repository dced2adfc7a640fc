"""What `config init` writes: a commented, valid, safe starting config.

The file is a list of section blocks, each a function of the few values init chooses, so a new
section (say `[web]`) is one more function in SECTIONS. Safe by construction: the sample tariff
is one flat price (no spread, so no discharge can pay on it) and V2G starts off until the user
has written real prices; `config check` says both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_CHARGER = "garage"
SAMPLE_IMPORT_PER_KWH = 0.30
SAMPLE_EXPORT_PER_KWH = 0.0
SAMPLE_MARK = "SAMPLE"  # the word config check looks for beside the sample tariff


@dataclass(frozen=True, slots=True)
class InitValues:
    """What differs between two `config init` runs."""

    charger_id: str = DEFAULT_CHARGER
    # Exactly one each: the password inline, or the credential holding it.
    password: str | None = None
    credential: str | None = None
    web_password: str | None = None
    web_credential: str | None = None
    state_dir: str = "/var/lib/v2g-gateway"
    timezone: str = "Europe/Berlin"


def _gateway(v: InitValues) -> str:
    return f"""\
[gateway]
id = "home"                          # names this gateway in MQTT topics: v2g/home/...
# The SQLite state file lives here (under systemd: its StateDirectory).
state_dir = "{v.state_dir}"
# IANA time zone; tariff periods and departures are local times in it.
timezone = "{v.timezone}"
# credentials_dir = "credentials"    # where credential = "NAME" files are, when run by hand
"""


def _ocpp(v: InitValues) -> str:
    return """\
[ocpp]
# Chargers connect to ws://<this machine>:9000/<charger id>; the log prints the URL at start.
host = "0.0.0.0"                     # every interface; put the LAN address here to narrow it
port = 9000                          # the charger URL ends :9000/<charger id>
security_profile = 1                 # 1 basic auth (ws://) | 2 TLS (wss://) | 3 client certs
# tls_cert_file = "server.pem"       # profiles 2 and 3 (docs/security.md)
# tls_key_credential = "tls-key"     # the key, as a file in credentials/ (or tls_key_file)
"""


def _chargers(v: InitValues) -> str:
    if v.credential is not None:
        secret = (
            f"# Its password is the file credentials/{v.credential}; enter the same in the charger.\n"
            f'credential = "{v.credential}"'
        )
    else:
        secret = (
            "# Its password (16-40 characters; enter the same in the charger). Safer: put it in\n"
            f'# credentials/{v.charger_id} and write credential = "{v.charger_id}" instead.\n'
            f'password = "{v.password}"'
        )
    return f"""\
[[chargers]]
# The charger's OCPP identity: the last part of the URL it connects to.
id = "{v.charger_id}"
{secret}
max_charge_w = 11000                 # the charger's limits, in W
max_discharge_w = 10000              # 0 for a charge-only charger
# ocpp_version = "2.1"               # pin OCPP 2.1 or "2.0.1"; default: what the charger prefers
"""


def _vehicles(v: InitValues) -> str:
    return """\
[[vehicles]]
id = "car"                           # names the car in MQTT topics and commands
battery_kwh = 60                     # usable capacity
reserve_soc_percent = 40             # never discharged below this (outages have their own floor)
# id_tokens = ["04A1B2C3"]           # RFID/app tokens that identify this car at a charger
# soc_topic = "car/soc"              # MQTT topic with the SoC, for AC chargers that cannot see it
"""


def _prices(v: InitValues) -> str:
    return f"""\
[prices]
# Your real prices make the plan. Until you set them, the gateway charges by the flat
# {SAMPLE_MARK} below and V2G stays off ([preferences] v2g_enabled = false).
# Day-ahead markets (docs/prices.md): source = "entsoe" with area = "DE-LU" and
# credential = "entsoe-token" (the free token, in credentials/entsoe-token), or "nordpool",
# "energidataservice", "awattar", "octopus"; or your own "csv" file or "mqtt" topic.
source = "tariff"                    # tariff (below) | entsoe | nordpool | ... | csv | mqtt
currency = "EUR"                     # of every price in this file
# vat_percent = 19                   # composition of market prices into what you really pay:
# grid_fee_per_kwh = 0.10            #   import = (spot + margin) * (1 + VAT) + fees + taxes
# energy_tax_per_kwh = 0.02          #   export = spot * export_factor - export_fee

[[prices.tariff]]                    # {SAMPLE_MARK} (invented): one flat price all day
start = "00:00"                      # local time; "00:00" to "00:00" is the whole day
end = "00:00"                        # (a period may wrap past midnight)
import_per_kwh = {SAMPLE_IMPORT_PER_KWH:.2f}                # what a kWh from the grid costs you
export_per_kwh = {SAMPLE_EXPORT_PER_KWH:.2f}                # what a kWh fed back earns you
# A time-of-use contract instead: one period per price, local times, may wrap midnight, and
# together covering the whole day (config check finds gaps), e.g.
# [[prices.tariff]]
# start = "17:00"
# end = "21:00"
# import_per_kwh = 0.45
# export_per_kwh = 0.08
# days = ["mon", "tue", "wed", "thu", "fri"]
"""


def _preferences(v: InitValues) -> str:
    return """\
[preferences]
v2g_enabled = false                  # true once [prices] holds your real prices
# discharge_above_per_kwh = 0.30     # price-spike threshold on the export price
degradation_cost_per_kwh = 0.05      # battery wear per kWh discharged

[[preferences.departures]]           # be at target_soc_percent by time on these days
days = ["mon", "tue", "wed", "thu", "fri"]
time = "07:30"                       # local time
target_soc_percent = 80              # the SoC the car needs by then
"""


def _outage(v: InitValues) -> str:
    return """\
[outage]
# A grid outage is seen from the charger's voltage; a grid meter on MQTT is faster and surer
# (docs/outage.md). In an outage the car powers the house down to floor_soc_percent.
# mqtt_topic = "home/grid"
# payload_outage = "offline"
# payload_normal = "online"
floor_soc_percent = 20
"""


def _mqtt(v: InitValues) -> str:
    return """\
[mqtt]
host = "localhost"                   # your broker; Home Assistant finds the gateway there
port = 1883                          # 8883 with tls = true
# username = "v2g"
# credential = "mqtt-password"       # the broker password, in credentials/mqtt-password
topic_prefix = "v2g"                 # topics: v2g/home/... (docs/mqtt.md)
homeassistant_discovery = true       # Home Assistant sets up the devices by itself
"""


def _web(v: InitValues) -> str:
    if v.web_credential is not None:
        secret = (
            f"# Its login password is the file credentials/{v.web_credential}.\n"
            f'credential = "{v.web_credential}"'
        )
    else:
        secret = (
            "# Its login password (8-200 characters). Safer: put it in credentials/web-password\n"
            '# and write credential = "web-password" instead.\n'
            f'password = "{v.web_password}"'
        )
    return f"""\
[web]
# The web app (docs/web.md): status, plan and controls in a browser on the LAN.
host = "0.0.0.0"                     # every interface; "127.0.0.1" keeps it on this machine
port = 8080                          # http://<this machine>:8080/
{secret}
"""


Block = Callable[[InitValues], str]
# In the order a user fills them in; add a section by adding its block here.
SECTIONS: list[Block] = [
    _gateway,
    _ocpp,
    _chargers,
    _vehicles,
    _prices,
    _preferences,
    _outage,
    _mqtt,
    _web,
]

HEADER = """\
# v2g-gateway configuration, written by `v2g-gateway config init`.
# Every key: config/gateway.example.toml. Check this file with
#   v2g-gateway config check --config THIS_FILE
# Relative paths are relative to this file. Secrets: credential = "NAME" reads the file
# credentials/NAME beside this file (under systemd: handed over by the unit, docs/operations.md).
"""


def render(values: InitValues, sections: list[Block] | None = None) -> str:
    return HEADER + "".join("\n" + block(values) for block in sections or SECTIONS)
