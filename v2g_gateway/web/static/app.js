// v2g-gateway web app: keeps the server-rendered page live from /api/ and adds the controls.
// No framework, no build step: the page is readable without this file.
"use strict";
(function () {
  document.documentElement.classList.add("js");
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const SVGNS = "http://www.w3.org/2000/svg";
  const plans = {};

  // ------------------------------------------------------------------ talking to the API
  async function api(path, body) {
    const opts = { credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined) {
      opts.method = "POST";
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    let data = {};
    try { data = await r.json(); } catch (e) { data = { ok: false, error: "HTTP " + r.status }; }
    if (r.status === 401) { location.href = "/login"; }
    return { status: r.status, data: data };
  }

  // ------------------------------------------------------------------ live values
  function lookup(root, path) {
    let x = root;
    for (const part of path.split(".")) {
      if (x === null || x === undefined) return undefined;
      x = x[part];
    }
    return x;
  }

  function bind(status) {
    const root = Object.assign({}, status, { vehicles: {} });
    for (const v of status.vehicles || []) root.vehicles[v.vehicle_id] = v;
    for (const el of document.querySelectorAll("[data-b]")) {
      const v = lookup(root, el.dataset.b);
      if (v !== undefined) el.textContent = v === null ? "none" : String(v);
    }
    for (const el of document.querySelectorAll("[data-b-value]")) {
      const v = lookup(root, el.dataset.bValue);
      if (typeof v === "number") el.value = v;
    }
    const live = document.getElementById("live");
    if (live) live.classList.remove("offline");
  }

  function addNote(n) {
    const feed = document.getElementById("feed");
    if (!feed || !n.message) return;
    const li = document.createElement("li");
    li.className = n.level;
    const t = document.createElement("time");
    t.dateTime = n.at;
    t.textContent = n.when;
    li.append(t, " " + n.message);
    feed.prepend(li);
    while (feed.children.length > 50) feed.lastElementChild.remove();
  }

  function connect() {
    if (!window.EventSource || !document.getElementById("live")) return;
    const es = new EventSource("/api/events");
    es.addEventListener("status", (ev) => {
      const st = JSON.parse(ev.data);
      bind(st);
      for (const vid of st.changed_plans || []) if (plans[vid]) loadPlan(vid);
    });
    es.addEventListener("notification", (ev) => addNote(JSON.parse(ev.data)));
    es.onerror = async () => {
      const live = document.getElementById("live");
      if (live) live.classList.add("offline");
      const s = await api("/api/session").catch(() => null);
      if (s && s.data && s.data.authenticated === false) location.href = "/login";
    };
  }

  // ------------------------------------------------------------------ the plan chart
  function el(name, attrs, parent) {
    const e = document.createElementNS(SVGNS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function text(parent, x, y, s, anchor) {
    const t = el("text", { x: x, y: y, "text-anchor": anchor || "start" }, parent);
    t.textContent = s;
    return t;
  }

  // Series drawn as lines in the power panel when the plan carries them (PV and house load
  // arrive with the home issue: null until then).
  const HOME_SERIES = [["pv_kw", "pv", "PV"], ["house_load_kw", "load", "house load"]];

  function drawChart(fig, p) {
    const box = fig.querySelector(".svg");
    // Drawn at the width it is shown at, so its text stays readable on a phone.
    const W = Math.max(300, Math.round(box.clientWidth || 640));
    const L = 48, R = 38, PT = 16, PH = 90, GAP = 16, QH = 130, AX = 18;
    const H = PT + PH + GAP + QH + AX;
    box.textContent = "";
    const prices = p.prices || [], slots = p.slots || [];
    if (!prices.length && !slots.length) {
      box.textContent = "No prices or plan to draw yet.";
      return;
    }
    const ms = (s) => new Date(s).getTime();
    const now = ms(p.now);
    const t0 = Math.min(now, ...prices.map((x) => ms(x.start)), ...slots.map((x) => ms(x.start)));
    const t1 = Math.max(...prices.map((x) => ms(x.end)), ...slots.map((x) => ms(x.end)), now + 3600e3);
    const X = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": "prices, planned power and state of charge" }, box);

    // Prices (top panel)
    const vals = prices.flatMap((x) => [x.import_per_kwh, x.export_per_kwh]);
    const pmax = Math.max(0.01, ...vals), pmin = Math.min(0, ...vals);
    const Y1 = (v) => PT + PH - ((v - pmin) / (pmax - pmin)) * PH;
    el("line", { class: "axis", x1: L, x2: W - R, y1: Y1(0), y2: Y1(0) }, svg);
    text(svg, L - 4, Y1(pmax) + 10, pmax.toFixed(2), "end");
    text(svg, L - 4, Y1(pmin), pmin.toFixed(2), "end");
    text(svg, L, PT - 4, "price " + p.currency + "/kWh");
    for (const [key, cls] of [["import_per_kwh", "imp"], ["export_per_kwh", "exp"]]) {
      let d = "";
      for (const x of prices) {
        const y = Y1(x[key]);
        d += (d ? "L" : "M") + X(ms(x.start)).toFixed(1) + "," + y.toFixed(1) + "L" + X(ms(x.end)).toFixed(1) + "," + y.toFixed(1);
      }
      if (d) el("path", { class: cls, d: d }, svg);
    }
    if (p.break_even_per_kwh) {
      const y = Y1(p.break_even_per_kwh);
      el("line", { class: "grid", x1: L, x2: W - R, y1: y, y2: y, "stroke-dasharray": "2 4" }, svg);
    }

    // Power bars and the SoC path (bottom panel): kW left, % right
    const top = PT + PH + GAP;
    const kws = slots.map((s) => Math.abs(s.power_kw));
    for (const [key] of HOME_SERIES) if (Array.isArray(p[key])) kws.push(...p[key].map(Math.abs));
    const kmax = Math.max(1, ...kws);
    const Y2 = (kw) => top + QH / 2 - (kw / kmax) * (QH / 2);
    const S = (pct) => top + QH - (pct / 100) * QH;
    el("line", { class: "axis", x1: L, x2: W - R, y1: Y2(0), y2: Y2(0) }, svg);
    text(svg, L, top - 4, "power (charge up, discharge down) and SoC");
    text(svg, L - 4, top + 10, "+" + kmax.toFixed(0) + " kW", "end");
    text(svg, L - 4, top + QH, "-" + kmax.toFixed(0) + " kW", "end");
    text(svg, W - R + 4, S(100) + 10, "100%");
    text(svg, W - R + 4, S(0), "0%");
    for (const s of slots) {
      if (Math.abs(s.power_kw) < 0.05) continue;
      const x0 = X(ms(s.start)), x1 = X(ms(s.end));
      const y0 = Y2(Math.max(0, s.power_kw)), y1 = Y2(Math.min(0, s.power_kw));
      el("rect", { class: s.power_kw > 0 ? "charge" : "discharge", x: x0, y: y0,
        width: Math.max(0.5, x1 - x0 - 0.5), height: Math.max(0.5, y1 - y0) }, svg);
    }
    for (const [key, cls] of HOME_SERIES) {
      if (!Array.isArray(p[key])) continue;
      let d = "";
      p[key].forEach((kw, i) => {
        if (slots[i] && kw !== null) d += (d ? "L" : "M") + X(ms(slots[i].start)) + "," + Y2(kw);
      });
      if (d) el("path", { class: cls, d: d }, svg);
    }
    const yr = S(p.reserve_soc_percent);
    el("line", { class: "reserve", x1: L, x2: W - R, y1: yr, y2: yr }, svg);
    if (slots.length) {
      let d = "M" + X(ms(slots[0].start)) + "," + S(slots[0].soc_start_percent);
      for (const s of slots) d += "L" + X(ms(s.end)).toFixed(1) + "," + S(s.soc_end_percent).toFixed(1);
      el("path", { class: "soc", d: d }, svg);
    }
    if (p.target && ms(p.target.at) <= t1) {
      el("circle", { class: "target", cx: X(ms(p.target.at)), cy: S(p.target.soc_percent), r: 5 }, svg);
    }
    const xn = X(now);
    el("line", { class: "now", x1: xn, x2: xn, y1: PT, y2: top + QH }, svg);

    // Hours along the bottom, in the gateway's time zone
    const fmt = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: p.timezone });
    const span = (t1 - t0) / 3600e3, perLabel = 60 / (W - L - R) * span;
    const step = [1, 2, 3, 4, 6, 12].find((h) => h >= perLabel) || 24;
    for (let t = Math.ceil(t0 / 3600e3) * 3600e3; t <= t1; t += 3600e3) {
      const hour = Number(new Intl.DateTimeFormat("en-GB", { hour: "numeric", hourCycle: "h23", timeZone: p.timezone }).format(t));
      if (hour % step) continue;
      el("line", { class: "grid", x1: X(t), x2: X(t), y1: PT, y2: top + QH }, svg);
      text(svg, X(t), H - 4, fmt.format(t), "middle");
    }

    // Tap a slot: its reason in words
    const pick = el("rect", { class: "pick", x: 0, y: PT, width: 0, height: top + QH - PT }, svg);
    const cap = fig.querySelector("figcaption");
    svg.addEventListener("click", (ev) => {
      const r = svg.getBoundingClientRect();
      const x = ((ev.clientX - r.left) / r.width) * W;
      const t = t0 + ((x - L) / (W - L - R)) * (t1 - t0);
      const s = slots.find((z) => ms(z.start) <= t && t < ms(z.end));
      const pr = prices.find((z) => ms(z.start) <= t && t < ms(z.end));
      if (!s && !pr) return;
      const a = s || pr;
      pick.setAttribute("x", X(ms(a.start)));
      pick.setAttribute("width", Math.max(1, X(ms(a.end)) - X(ms(a.start))));
      const price = pr ? ` · import ${pr.import_per_kwh.toFixed(3)}, export ${pr.export_per_kwh.toFixed(3)} ${p.currency}/kWh` : "";
      cap.textContent = s ? `${s.label}: ${s.text}${price}` : `no plan for this time${price}`;
    });
    const legend = document.createElement("div");
    legend.className = "legend";
    const items = [["imp", "import price"], ["exp", "export price"], ["charge", "charge"],
      ["discharge", "discharge"], ["soc", "SoC"], ["reserve", "reserve"]];
    for (const [key, cls, label] of HOME_SERIES) if (Array.isArray(p[key])) items.push([cls, label]);
    for (const [cls, label] of items) {
      const span = document.createElement("span");
      const i = document.createElement("i");
      i.className = "sw-" + cls;
      span.append(i, label);
      legend.append(span);
    }
    box.append(legend);
  }

  function drawTable(details, p) {
    const body = details.querySelector("tbody");
    if (!body) return;
    body.textContent = "";
    for (const s of p.slots || []) {
      const tr = document.createElement("tr");
      const cells = [s.label, fix(s.import_per_kwh), fix(s.export_per_kwh),
        (s.power_kw >= 0 ? "+" : "") + s.power_kw.toFixed(1), s.soc_end_percent.toFixed(0), s.text];
      for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
      body.append(tr);
    }
  }
  const fix = (x) => (x === null || x === undefined ? "" : Number(x).toFixed(3));

  async function loadPlan(vid) {
    const r = await api(`/api/vehicles/${encodeURIComponent(vid)}/plan`).catch(() => null);
    if (!r || r.status !== 200) return;
    plans[vid] = r.data;
    const fig = document.querySelector(`figure[data-chart="${CSS.escape(vid)}"]`);
    if (fig) drawChart(fig, r.data);
    const det = document.querySelector(`details[data-plan="${CSS.escape(vid)}"]`);
    if (det) drawTable(det, r.data);
  }

  // ------------------------------------------------------------------ the controls
  function say(out, ok, message) {
    out.textContent = message;
    out.classList.toggle("ok", ok);
    out.classList.toggle("refused", !ok);
  }

  function overrideBody(form, action) {
    const body = { action: action };
    if (action === "automatic") return body;
    body.minutes = Number(form.elements.minutes.value);
    const soc = action === "charge_now" ? form.elements.charge_soc.value
      : action === "discharge_now" ? form.elements.discharge_soc.value : "";
    if (soc !== "") body.soc_percent = Number(soc);
    return body;
  }

  // "mon-fri 07:30 80; sat 10:00 60" -> [{days, time, target_soc_percent}, ...]; "" -> null.
  function weekly(text) {
    if (text.trim() === "") return null;
    const names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    return text.split(";").map((s) => s.trim()).filter(Boolean).map((part) => {
      const [d, time, target] = part.split(/\s+/);
      let days = d.toLowerCase().split(",");
      if (days.length === 1 && days[0].includes("-")) {
        const [a, b] = days[0].split("-");
        days = names.slice(names.indexOf(a), names.indexOf(b) + 1);
        if (days.length === 0) days = [d];
      }
      const o = { days: days, time: time };
      if (target !== undefined) o.target_soc_percent = Number(target.replace("%", ""));
      return o;
    });
  }

  function prefBody(form) {
    const input = form.elements.value;
    let value;
    if (form.dataset.kind === "bool") value = input.checked;
    else if (form.dataset.kind === "weekly") value = weekly(input.value);
    else if (form.dataset.kind === "mode") value = form.elements.value.value;
    else if (input.value === "" && input.dataset.empty === "null") value = null;
    else if (form.dataset.kind === "pct") value = input.value === "" ? null : Number(input.value);
    else value = input.value;
    const body = { key: form.dataset.key, value: value };
    if (form.dataset.vehicle) body.vehicle = form.dataset.vehicle;
    return body;
  }

  async function pollTest(form, out) {
    for (let i = 0; i < 400; i++) {
      await new Promise((r) => setTimeout(r, 1500));
      const r = await api(form.dataset.api).catch(() => null);
      const t = r && r.data && r.data.test;
      if (!t) continue;
      say(out, t.state !== "failed", `${t.state}: ${t.message}`);
      if (t.state !== "running") return;
    }
  }

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (!form.dataset || !form.dataset.api) return;
    ev.preventDefault();
    const out = form.querySelector(".result");
    let body = {};
    if (form.classList.contains("action")) {
      const btn = ev.submitter;
      if (!btn || !btn.value) return;
      body = overrideBody(form, btn.value);
    } else if (form.classList.contains("pref")) {
      body = prefBody(form);
    }
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    say(out, true, "…");
    try {
      const r = await api(form.dataset.api, body);
      say(out, !!r.data.ok, r.data.ok ? r.data.message : r.data.error);
      if (r.data.ok && form.classList.contains("test")) pollTest(form, out);
    } catch (e) {
      say(out, false, "the gateway did not answer: " + e);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });

  // ------------------------------------------------------------------ start
  // Charts load when they come into view (a page may list several cars).
  const figs = document.querySelectorAll("figure[data-chart]");
  if (window.IntersectionObserver) {
    const seen = new IntersectionObserver((entries) => {
      for (const en of entries) {
        if (!en.isIntersecting) continue;
        seen.unobserve(en.target);
        loadPlan(en.target.dataset.chart);
      }
    }, { rootMargin: "200px" });
    figs.forEach((f) => seen.observe(f));
  } else {
    figs.forEach((f) => loadPlan(f.dataset.chart));
  }
  connect();
})();
