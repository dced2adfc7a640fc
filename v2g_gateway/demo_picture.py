"""The demo's picture: prices, state of charge and charger power, with days labelled and the
outage and demand-response windows marked where they happened."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from v2g_gateway.demo_report import DemoRun

Span = tuple[datetime, datetime]


def draw(run: DemoRun, path: Path, **kw: Any) -> Path | None:
    """Save the picture; None (and a line saying why) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("picture: skipped (install matplotlib: pip install 'v2g-gateway[plot]')")
        return None
    fig = figure(run, **kw)
    if fig is None:
        return None
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def figure(
    run: DemoRun,
    *,
    title: str,
    tz: ZoneInfo,
    reserve: float,
    outages: list[Span],
    demand_response: list[Span],
) -> Any:
    """The matplotlib Figure (tests read its labels and spans)."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if not run.samples:
        return None
    t = [s.at.astimezone(tz) for s in run.samples]
    days = (t[-1] - t[0]) > timedelta(hours=30)
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(14 if days else 11, 8), sharex=True)
    ax1.step(t, [s.import_price for s in run.samples], where="post", label="import")
    ax1.step(t, [s.export_price for s in run.samples], where="post", label="export", linestyle="--")
    ax1.set_ylabel("price per kWh")
    ax1.set_title(title)
    ax2.plot(t, [s.soc for s in run.samples], color="tab:green", label="SoC")
    ax2.axhline(reserve, color="tab:red", linestyle=":", label=f"reserve {reserve:g} %")
    departures = [v for v in run.visits if v.left_at is not None and v.target is not None]
    if departures:
        ax2.scatter(
            [v.left_at.astimezone(tz) for v in departures if v.left_at is not None],
            [v.target for v in departures],
            marker="v",
            color="tab:gray",
            zorder=3,
            label="departure target",
        )
    ax2.set_ylabel("SoC %")
    ax2.set_ylim(0, 100)
    power = [s.power_kw for s in run.samples]
    ax3.fill_between(
        t, power, 0, where=[p > 0 for p in power], color="tab:blue", step="post", label="charging"
    )
    ax3.fill_between(
        t,
        power,
        0,
        where=[p < 0 for p in power],
        color="tab:orange",
        step="post",
        label="discharging",
    )
    ax3.set_ylabel("charger power kW")
    for spans, colour, label in (
        (outages, "tab:red", "grid outage"),
        (demand_response, "tab:purple", "demand response"),
    ):
        for i, (a, b) in enumerate(spans):
            for ax in (ax1, ax2, ax3):
                ax.axvspan(
                    a.astimezone(tz),
                    b.astimezone(tz),
                    color=colour,
                    alpha=0.18,
                    label=label if i == 0 and ax is ax3 else None,
                )
    for ax in (ax1, ax2, ax3):
        ax.legend(loc="upper left", fontsize="small")
        ax.grid(axis="x", alpha=0.3)
    if days:
        ax3.xaxis.set_major_locator(mdates.DayLocator(tz=tz))  # type: ignore[no-untyped-call]
        ax3.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b", tz=tz))  # type: ignore[no-untyped-call]
        ax3.xaxis.set_minor_locator(mdates.HourLocator(byhour=[6, 12, 18], tz=tz))  # type: ignore[no-untyped-call]
    else:
        ax3.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))  # type: ignore[no-untyped-call]
        ax3.set_xlabel(f"{t[0]:%A %d %B %Y} to {t[-1]:%A %d %B}")
    fig.tight_layout()
    return fig
