"""The home around the cars: PV, the house load and the grid connection (measured and forecast)."""
