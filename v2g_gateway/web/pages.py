"""Server-rendered pages: the status is readable without JavaScript; the script (static/app.js)
then keeps it live from /api/ and adds the controls.

Every value shown is escaped; elements carrying `data-b="path"` are the ones the script updates
from the status JSON (`vehicles.<id>.` addresses one vehicle), so both render the same words.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape
from importlib import resources
from typing import Any

from aiohttp import web

from v2g_gateway.web.context import CTX, SESSION, WebContext
from v2g_gateway.web.plan import plan_view
from v2g_gateway.web.setup import setup_view

STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
MAX_FULL_CARDS = 4  # beyond, one line per car (a fleet), each linking to its full card
MAX_TABLE_ROWS = 48  # the plan table without JavaScript: the next 12 h of quarter-hours
DURATIONS = ((30, "30 min"), (60, "1 h"), (120, "2 h"), (240, "4 h"), (480, "8 h"), (1440, "24 h"))


def e(x: Any) -> str:
    return escape("" if x is None else str(x), quote=True)


def _doc(
    title: str, body: str, *, csrf: str | None = None, page: str = "", nav: bool = True
) -> str:
    meta = f'<meta name="csrf-token" content="{e(csrf)}">' if csrf else ""
    links = (
        '<nav><a href="/">Status</a><a href="/setup">Charger setup</a>'
        f'<form method="post" action="/logout"><input type="hidden" name="csrf" value="{e(csrf)}">'
        '<button class="link">Log out</button></form></nav>'
        if nav and csrf
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"{meta}<title>{e(title)}</title>"
        '<link rel="icon" href="/static/icon.svg"><link rel="stylesheet" href="/static/app.css">'
        '<script src="/static/app.js" defer></script></head>'
        f'<body data-page="{e(page)}"><header><a class="brand" href="/">v2g-gateway</a>{links}'
        f"</header><main>{body}</main></body></html>"
    )


def error_page(status: int, message: str) -> str:
    return _doc(
        f"{status}", f'<section class="card"><h1>{status}</h1><p>{e(message)}</p></section>'
    )


def login_page(message: str | None = None) -> str:
    err = f'<p class="refused" role="alert">{e(message)}</p>' if message else ""
    return _doc(
        "Log in · v2g-gateway",
        '<section class="card login"><h1>Log in</h1>'
        '<form method="post" action="/login"><label>Password '
        '<input type="password" name="password" autocomplete="current-password" required '
        "autofocus></label><button>Log in</button></form>"
        f"{err}</section>",
        nav=False,
    )


# ---------------------------------------------------------------------------- status page


def _fact(label: str, path: str, value: Any) -> str:
    return f'<dt>{e(label)}</dt><dd data-b="{e(path)}">{e(value)}</dd>'


def _plan_rows(plan: dict[str, Any] | None, currency: str) -> str:
    rows = []
    for s in (plan or {}).get("slots", [])[:MAX_TABLE_ROWS]:
        rows.append(
            f"<tr><td>{e(s['label'])}</td><td>{e(_price(s['import_per_kwh']))}</td>"
            f"<td>{e(_price(s['export_per_kwh']))}</td><td>{s['power_kw']:+.1f}</td>"
            f"<td>{s['soc_end_percent']:.0f}</td><td>{e(s['text'])}</td></tr>"
        )
    if not rows:
        rows.append(
            '<tr><td colspan="6">no plan (the car is not plugged in, or no prices)</td></tr>'
        )
    return (
        f"<table><thead><tr><th>time</th><th>import {e(currency)}/kWh</th><th>export</th>"
        "<th>kW</th><th>SoC %</th><th>why</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _int(x: Any) -> str:
    return "" if x is None else f"{float(x):.0f}"


def _price(x: Any) -> str:
    return "" if x is None else f"{float(x):.3f}"


def _override_form(vid: str, v: dict[str, Any]) -> str:
    durations = "".join(
        f'<option value="{m}"{" selected" if m == 240 else ""}>{t}</option>' for m, t in DURATIONS
    )
    return (
        f'<form class="js-only action" data-api="/api/vehicles/{e(vid)}/override" data-vehicle="{e(vid)}">'
        "<fieldset><legend>Override the plan</legend>"
        f'<label>Charge to <input name="charge_soc" type="number" min="0" max="100" step="1" '
        f'value="{_int(v["target_soc_percent"] or v["max_soc_percent"])}" inputmode="numeric"> %</label>'
        f'<label>Discharge down to <input name="discharge_soc" type="number" min="0" max="100" '
        f'step="1" value="{_int(v["reserve_soc_percent"])}" inputmode="numeric"> %</label>'
        f'<label>For <select name="minutes">{durations}</select></label>'
        '<div class="buttons">'
        '<button name="action" value="charge_now">Charge now</button>'
        '<button name="action" value="discharge_now">Discharge now</button>'
        '<button name="action" value="hold">Hold</button>'
        '<button name="action" value="release">Release</button>'
        '<button name="action" value="automatic">Automatic</button></div>'
        '<output class="result" role="status"></output></fieldset></form>'
    )


# The modes a user understands (docs/home.md); the plan explains each in its reasons.
CHARGE_MODES = (
    ("smart", "Smart: the plan (prices, PV, V2G where it pays)"),
    ("pv_only", "PV only: surplus solar, never the grid"),
    ("min_pv", "Min + PV: a minimum power, surplus on top"),
    ("charge_now", "Charge now: full power until full"),
    ("hold", "Hold: neither charge nor discharge"),
)


def _pref_form(label: str, key: str, value: Any, vid: str | None, kind: str) -> str:
    veh = f' data-vehicle="{e(vid)}"' if vid else ""
    if kind == "bool":
        field = f'<input name="value" type="checkbox"{" checked" if value else ""}>'
    elif kind == "time":
        field = f'<input name="value" type="time" value="{e(value or "")}" data-empty="null">'
    elif kind == "mode":
        options = "".join(
            f'<option value="{m}"{" selected" if m == value else ""}>{e(label)}</option>'
            for m, label in CHARGE_MODES
        )
        field = f'<select name="value">{options}</select>'
    elif kind == "weekly":
        field = (
            f'<input name="value" type="text" value="{e(value or "")}" '
            'placeholder="mon-fri 07:30 80; sat 10:00 60" autocomplete="off">'
        )
    else:
        field = f'<input name="value" type="number" min="0" max="100" step="1" value="{_int(value)}" inputmode="numeric">'
    return (
        f'<form class="js-only pref" data-api="/api/preference" data-key="{e(key)}"{veh} '
        f'data-kind="{kind}"><label>{e(label)} {field}</label><button>Save</button>'
        '<output class="result" role="status"></output></form>'
    )


def _vehicle_card(v: dict[str, Any], plan: dict[str, Any] | None, currency: str) -> str:
    vid = v["vehicle_id"]
    p = f"vehicles.{vid}."
    soc = v["soc"]
    pct = "?" if soc["percent"] is None else f"{soc['percent']:.0f} %"
    meter = (
        f'<meter min="0" max="100" low="{e(v["reserve_soc_percent"])}" optimum="100" '
        f'value="{e(soc["percent"] or 0)}" data-b-value="{p}soc.percent"></meter>'
    )
    weekly = (
        "; ".join(
            f"{'/'.join(d['days'])} {d['time']} ({d['target_soc_percent']:g} %)"
            for d in v["weekly_departures"]
        )
        or "none in the config"
    )
    facts = (
        _fact("Now", p + "state_text", v["state_text"])
        + _fact("Mode", p + "mode_text", v["mode_text"])
        + _fact("Why", p + "reason_now", v["reason_now"])
        + _fact("Next departure", p + "departure_text", v["departure_text"])
        + _fact("Reserve", p + "reserve_text", v["reserve_text"])
        + _fact(
            "Last command",
            p + "last_command.text",
            (v["last_command"] or {}).get("text", "none yet"),
        )
    )
    settings = (
        '<details class="js-only settings"><summary>Settings for this car</summary>'
        + _pref_form("Charging mode", "charge_mode", v["charge_mode"], vid, "mode")
        + _pref_form("Reserve %", "reserve_soc_percent", v["reserve_soc_percent"], vid, "pct")
        + _pref_form(
            "Departure target %", "target_soc_percent", v["target_soc_percent"], vid, "pct"
        )
        + _pref_form(
            "Daily departure (empty: the weekly plan)",
            "departure_time",
            v["departure_time"],
            vid,
            "time",
        )
        + _pref_form(
            "Weekly plan (days time target %; empty: the config's)",
            "departures",
            v["weekly_text"],
            vid,
            "weekly",
        )
        + f'<p class="small">Weekly plan now: {e(weekly)}</p></details>'
    )
    return (
        f'<section class="card vehicle" id="v-{e(vid)}" data-vehicle="{e(vid)}">'
        f"<h2>{e(v['name'])} <small>{e(v['charger_id'] or '')}</small></h2>"
        f'<div class="soc"><span class="big" data-b="{p}soc.percent_text">{e(pct)}</span>{meter}'
        f'<small data-b="{p}soc.text">{e(soc["text"])}</small></div>'
        f'<dl class="facts">{facts}</dl>'
        + _override_form(vid, v)
        + f'<figure class="chart js-only" data-chart="{e(vid)}"><div class="svg"></div>'
        '<figcaption aria-live="polite">Tap the chart for the reason of a slot.</figcaption></figure>'
        f'<details class="plan" data-plan="{e(vid)}"><summary>The plan, slot by slot</summary>'
        f"{_plan_rows(plan, currency)}</details>" + settings + "</section>"
    )


def _feed(notes: list[dict[str, Any]]) -> str:
    items = "".join(
        f'<li class="{e(n["level"])}"><time datetime="{e(n["at"])}">{e(n["when"])}</time> '
        f"{e(n['message'])}</li>"
        for n in notes
    )
    return f'<ol id="feed">{items}</ol>'


def _compact_card(v: dict[str, Any]) -> str:
    """One line per car when there are many: the whole card is one tap away."""
    vid = v["vehicle_id"]
    p = f"vehicles.{vid}."
    return (
        f'<section class="card compact" id="v-{e(vid)}"><h2><a href="/?vehicle={e(vid)}">'
        f"{e(v['name'])}</a> <small>{e(v['charger_id'] or '')}</small></h2><p>"
        f'<b data-b="{p}soc.percent_text">{e(v["soc"]["percent_text"])}</b> · '
        f'<span data-b="{p}state_text">{e(v["state_text"])}</span> · '
        f'<span data-b="{p}reason_now">{e(v["reason_now"])}</span></p></section>'
    )


def status_page(ctx: WebContext, csrf: str, only: str | None = None) -> str:
    from v2g_gateway.web.views import notifications_view

    st = ctx.status()
    cur = str(st["currency"])
    vehicles = st["vehicles"]
    assert isinstance(vehicles, list)
    if only is not None:
        vehicles = [v for v in vehicles if v["vehicle_id"] == only]
    if len(vehicles) > MAX_FULL_CARDS:
        cards = "".join(_compact_card(v) for v in vehicles)
    else:
        cards = "".join(
            _vehicle_card(v, plan_view(ctx.src, v["vehicle_id"]), cur) for v in vehicles
        )
    cards = cards or '<section class="card"><p>No such vehicle in the config.</p></section>'
    prefs = st["preferences"]
    money = st["money"]
    grid = st["grid"]
    assert isinstance(prefs, dict) and isinstance(money, dict) and isinstance(grid, dict)
    body = (
        f'<p class="live" id="live" role="status">Gateway <b>{e(st["gateway_id"])}</b> at '
        f'<span data-b="now_text">{e(st["now_text"])}</span></p>'
        "<noscript><p class='small'>Without JavaScript this page shows the state when it was "
        "loaded (reload for news); the controls need JavaScript.</p></noscript>"
        + cards
        + '<section class="card" id="grid"><h2>Grid and outage backup</h2>'
        f'<p data-b="grid.text">{e(grid["text"])}</p></section>'
        '<section class="card" id="money"><h2>Money</h2><dl class="facts">'
        + _fact("Today", "money.today.text", money["today"]["text"])
        + _fact(f"This month ({money['month_name']})", "money.month.text", money["month"]["text"])
        + f'</dl><p class="small">Against {e(money["baseline"])}.</p></section>'
        '<section class="card" id="prefs"><h2>V2G</h2>'
        + _pref_form(
            "V2G on (discharge for money)", "v2g_enabled", prefs["v2g_enabled"], None, "bool"
        )
        + _pref_form(
            "V2H only (power the home, never export)", "v2h_only", prefs["v2h_only"], None, "bool"
        )
        + f'<p class="small">Outside the controls: V2G is <b data-b="preferences.v2g_enabled">'
        f'{e(prefs["v2g_enabled"])}</b>, V2H only <b data-b="preferences.v2h_only">'
        f"{e(prefs['v2h_only'])}</b>.</p></section>"
        '<section class="card" id="notifications"><h2>Notifications</h2>'
        + _feed(notifications_view(ctx.src))
        + f'</section><footer class="small">v2g-gateway {e(st["version"])}</footer>'
    )
    return _doc(f"{st['gateway_id']} · v2g-gateway", body, csrf=csrf, page="status")


# ---------------------------------------------------------------------------- setup page


def _cap(v: Any) -> str:
    return "unknown" if v is None else ("yes" if v is True else "no" if v is False else str(v))


def setup_page(ctx: WebContext, csrf: str, host: str | None) -> str:
    sv = setup_view(ctx.src, ctx.tests, host)
    cards = []
    for c in sv["chargers"]:
        caps = (
            "".join(
                f"<li>{e(k)}: {e(_cap(val))}</li>" for k, val in sorted(c["capabilities"].items())
            )
            or "<li>nothing learnt yet</li>"
        )
        refused = (
            "".join(f"<li>{e(r['when'])}: {e(r['reason'])}</li>" for r in c["refused"])
            or "<li>none</li>"
        )
        test = c["test_discharge"]
        test_txt = "" if test is None else f"{test['state']}: {test['message']}"
        ident = " ".join(str(x) for x in (c["vendor"], c["model"]) if x) or "not yet seen"
        cards.append(
            f'<section class="card charger" id="c-{e(c["charger_id"])}"><h2>{e(c["charger_id"])} '
            f'<small>{"online" if c["online"] else "offline"}</small></h2><dl class="facts">'
            f"<dt>CSMS URL</dt><dd><code>{e(c['csms_url'])}</code></dd>"
            f"<dt>If it asks for the full URL</dt><dd><code>{e(c['full_url'])}</code></dd>"
            f"<dt>Identity</dt><dd>{e(c['charger_id'])} (password: {e(c['password'])})</dd>"
            f"<dt>Charger</dt><dd>{e(ident)}</dd>"
            f"<dt>Serial, firmware</dt><dd>{e(c['serial'] or '?')}, {e(c['firmware'] or '?')}</dd>"
            f"<dt>Last seen</dt><dd>{e(c['last_seen_text'] or 'never')}</dd>"
            f"<dt>Discharge</dt><dd>{e(_cap(c['supports_discharge']))} "
            f"(up to {c['max_discharge_w']:.0f} W; charge {c['max_charge_w']:.0f} W)</dd>"
            f"</dl><h3>Learnt capabilities</h3><ul>{caps}</ul>"
            f"<h3>Last refused connections</h3><ul>{refused}</ul>"
            f'<form class="js-only test" data-api="/api/chargers/{e(c["charger_id"])}/test-discharge">'
            "<p>A short, small discharge (about 1 kW for at most 5 minutes) through the same "
            "safety gate as every dispatch, to see that this charger obeys.</p>"
            "<button>Test discharge</button>"
            f'<output class="result" role="status">{e(test_txt)}</output></form></section>'
        )
    unknown = "".join(
        f"<li>{e(r['when'])}: {e(r['identity'] or '?')}: {e(r['reason'])}</li>"
        for r in sv["refused_unknown"]
    )
    body = (
        '<section class="card"><h1>Charger setup</h1>'
        f"<p>Enter in the charger's OCPP settings: CSMS URL <code>{e(sv['csms_url'])}</code>, "
        "OCPP 2.0.1, its identity (the id in [[chargers]]) and its password.</p>"
        f"<p>Security profile {e(sv['security_text'])}.</p>"
        + (f"<h3>Refused: unknown identities</h3><ul>{unknown}</ul>" if unknown else "")
        + "</section>"
        + "".join(cards)
    )
    return _doc("Charger setup · v2g-gateway", body, csrf=csrf, page="setup")


# ---------------------------------------------------------------------------- routes


def _csrf(request: web.Request) -> str:
    s = request.get(SESSION)
    return "" if s is None else str(s.csrf)


async def index(request: web.Request) -> web.Response:
    only = request.query.get("vehicle")
    return web.Response(
        text=status_page(request.app[CTX], _csrf(request), only), content_type="text/html"
    )


async def setup(request: web.Request) -> web.Response:
    return web.Response(
        text=setup_page(request.app[CTX], _csrf(request), request.host), content_type="text/html"
    )


async def login_form(request: web.Request) -> web.StreamResponse:
    if request.get(SESSION) is not None:
        return web.Response(status=303, headers={"Location": "/"})
    return web.Response(text=login_page(), content_type="text/html")


def static_files() -> dict[str, bytes]:
    """The page's own files, read once from the package (no CDN, no external font)."""
    root = resources.files("v2g_gateway.web") / "static"
    return {
        f.name: f.read_bytes()
        for f in root.iterdir()
        if "." + f.name.rsplit(".", 1)[-1] in STATIC_TYPES
    }


def static_handler() -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    files = static_files()

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = files.get(name)
        if body is None:
            raise web.HTTPNotFound(reason=f"no file {name!r}")
        kind = STATIC_TYPES["." + name.rsplit(".", 1)[-1]]
        return web.Response(
            body=body, content_type=kind, charset="utf-8", headers={"Cache-Control": "no-cache"}
        )

    return serve


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/setup", setup)
    app.router.add_get("/login", login_form)
    app.router.add_get("/static/{name}", static_handler())
