"""Grid outage detection and vehicle-to-home backup (DESIGN.md section 2, `grid`)."""

from v2g_gateway.grid.detector import OutageDetector
from v2g_gateway.grid.payload import GridPayloadError, GridReading, parse_grid, parse_home_power

__all__ = ["GridPayloadError", "GridReading", "OutageDetector", "parse_grid", "parse_home_power"]
