"""The gateway's exception hierarchy; library errors are wrapped at the boundary.

GatewayError
├── ConfigError          a user's config mistake: file, key path, what is wrong
├── StoreError           the state database cannot be read or written
├── PriceError           a price source failed
│   ├── PriceFetchError      transport/HTTP failure, bad token
│   └── PriceParseError      a payload that is not what the source promises
├── OcppCommandError     a command to a charger failed
│   ├── ChargerOffline       no session for that charger
│   ├── CommandTimeout       no answer within the timeout
│   └── CommandRejected      CALLERROR or a Rejected status
├── PlanError            the planner could not produce a plan
└── HomeError            a home measurement, forecast or home file that is not what it says
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


class StoreError(GatewayError):
    pass


class PriceError(GatewayError):
    pass


class PriceFetchError(PriceError):
    pass


class PriceParseError(PriceError):
    pass


class OcppCommandError(GatewayError):
    def __init__(self, charger_id: str, action: str, detail: str) -> None:
        self.charger_id = charger_id
        self.action = action
        self.detail = detail
        super().__init__(f"{charger_id}: {action}: {detail}")


class ChargerOffline(OcppCommandError):
    pass


class CommandTimeout(OcppCommandError):
    pass


class CommandRejected(OcppCommandError):
    pass


class PlanError(GatewayError):
    pass


class HomeError(GatewayError):
    """A home measurement, forecast or home file that does not say what it should."""
