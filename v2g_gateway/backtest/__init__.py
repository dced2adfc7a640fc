"""Backtests: a price history through the planner and the daemon's own dispatch core."""

from v2g_gateway.backtest.prices import compose_prices, contiguous, load_prices
from v2g_gateway.backtest.results import BacktestResult, SlotRecord, StrategyResult, Trip
from v2g_gateway.backtest.run import run_backtest

__all__ = [
    "BacktestResult",
    "SlotRecord",
    "StrategyResult",
    "Trip",
    "compose_prices",
    "contiguous",
    "load_prices",
    "run_backtest",
]
