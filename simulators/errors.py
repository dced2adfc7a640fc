"""Simulator errors, kept inside the gateway's hierarchy so callers catch one base class."""

from __future__ import annotations

from v2g_gateway.errors import ConfigError, GatewayError


class SimulatorError(GatewayError):
    """A simulator was set up or driven with values it cannot honour."""


class InvalidProfile(SimulatorError):
    """A charging profile the composite-schedule logic cannot interpret."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"chargingProfile.{key}: {problem}")


class ScenarioError(ConfigError):
    """A scenario file mistake: the file, the key path and what is wrong."""
