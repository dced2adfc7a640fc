"""Simulated hardware (charger + EV, grid and home, scenarios) so the gateway runs without any."""
