// Coffer dashboard: one page over the native API (/coffer/v1), with the signed-in key's reach
// exactly. No framework, no build step. Money stays exact: the API's decimal strings are shown as
// they are, and sums are made on integers (BigInt minor units), never floating point; the chart
// uses numbers only to place pixels.

const API = "/coffer/v1";
const KEY = "coffer.key", AS = "coffer.as", THEME = "coffer.theme";
const $ = (sel) => document.querySelector(sel);

// ---- exact decimals ------------------------------------------------------------------------

/** "1234.50" -> {v: 123450n, scale: 2}. */
function dec(s) {
  const neg = s.startsWith("-");
  const [i, f = ""] = (neg ? s.slice(1) : s).split(".");
  const v = BigInt(i + f);
  return { v: neg ? -v : v, scale: f.length };
}
/** BigInt minor units at `scale` -> "1234.50". */
function fmt(v, scale) {
  const neg = v < 0n, a = (neg ? -v : v).toString().padStart(scale + 1, "0");
  const s = scale ? a.slice(0, a.length - scale) + "." + a.slice(a.length - scale) : a;
  return (neg ? "-" : "") + s;
}

// ---- DOM -----------------------------------------------------------------------------------

/** An element: h("td", {class: "num"}, "12.00"). Text is always set as text, never as HTML. */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) el.append(k instanceof Node ? k : String(k));
  return el;
}
function table(columns, rows) {
  const head = h("tr", {}, columns.map(([t, num]) => h("th", { class: num ? "num" : null, scope: "col" }, t)));
  return h("div", { class: "scroll" }, h("table", {}, h("thead", {}, head), h("tbody", {}, rows)));
}
const td = (v, attrs) => h("td", attrs || {}, v);
const num = (v, attrs) => h("td", Object.assign({ class: "num" }, attrs || {}), v);
const when = (t) => (t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z") : "");
function field(label, input) {
  const id = "f-" + label.toLowerCase().replace(/[^a-z]+/g, "-");
  input.id = id;
  return h("div", {}, h("label", { for: id }, label), input);
}

// ---- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || "HTTP " + status);
    this.status = status;
    this.code = body && body.error && body.error.code;
  }
}
function headers(extra) {
  const hd = Object.assign({ Authorization: "Bearer " + sessionStorage.getItem(KEY) }, extra || {});
  const as = sessionStorage.getItem(AS);
  if (as) hd["Coffer-On-Behalf-Of"] = as;
  return hd;
}
async function api(path, opts = {}) {
  const hd = headers(opts.headers);
  if (opts.body !== undefined) hd["Content-Type"] = "application/json";
  const r = await fetch(API + path, {
    method: opts.method || "GET", headers: hd, cache: "no-store",
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  if (r.status === 401) { signOut("Your key was refused: sign in again."); throw new ApiError(401); }
  if (opts.raw) { if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null)); return r; }
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}
/** Every page of a list (`data`, `next_cursor`), up to `max` items. */
async function all(path, max = 5000) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(path + sep + "limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return { items: out, truncated: !!cursor };
}
const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) s.set(k, v);
  const t = s.toString();
  return t ? "?" + t : "";
};

// ---- session ---------------------------------------------------------------------------------

let me = null;

async function start() {
  applyTheme(localStorage.getItem(THEME));
  $("#theme").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme !== "dark";
    localStorage.setItem(THEME, dark ? "dark" : "light");
    applyTheme(dark ? "dark" : "light");
  });
  $("#signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $("#key").value.trim());
    $("#key").value = "";
    await enter();
  });
  $("#signout").addEventListener("click", () => signOut(""));
  $("#as-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("#as-owner").value.trim();
    if (v) sessionStorage.setItem(AS, v); else sessionStorage.removeItem(AS);
    restart();
  });
  $("#as-clear").addEventListener("click", () => { sessionStorage.removeItem(AS); restart(); });
  $("#tree-search").addEventListener("input", filterTree);
  // Enter on an owner's id opens it, loaded in the tree or not (the API decides whether it is in reach).
  $("#tree-search").addEventListener("keydown", (e) => {
    const v = e.target.value.trim();
    if (e.key === "Enter" && /^[0-9a-f-]{36}$/i.test(v)) location.hash = "#/owners/" + v.toLowerCase();
  });
  window.addEventListener("hashchange", route);
  if (sessionStorage.getItem(KEY)) await enter(); else showSignIn("");
}
/** Load the page again at the start (after "view as" changed): nothing in flight, no state
 *  of the previous identity survives. */
function restart() {
  history.replaceState(null, "", "#/");
  location.reload();
}
/** A message above the views until the next sign-in or "view as". */
function flash(text) {
  $("#flash").textContent = text;
  $("#flash").hidden = !text;
}
function applyTheme(t) {
  const dark = t ? t === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}
function showSignIn(msg) {
  $("#app").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = msg;
  $("#key").focus();
}
function signOut(msg) {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(AS);
  live.stop();
  me = null;
  showSignIn(msg);
}
async function enter() {
  try {
    me = await api("/me");
  } catch (e) {
    if (e.status === 401) return;
    if (sessionStorage.getItem(AS)) {
      // "View as" an owner out of reach (or unknown): back to the key's own owner, saying so.
      sessionStorage.removeItem(AS);
      await enter();
      flash("View as: " + (e.status === 404 ? "that owner is not in this key's reach." : e.message));
      return;
    }
    showSignIn(e.message);
    return;
  }
  $("#signin").hidden = true;
  $("#app").hidden = false;
  flash("");
  $("#as-owner").value = sessionStorage.getItem(AS) || "";
  await buildTree();
  live.start();
  await route();
}

// ---- owner tree ------------------------------------------------------------------------------

async function buildTree() {
  treeSize = 1;
  $("#tree").replaceChildren(treeNode(me.acting_as, true));
}
/** Most owners the tree loads to search them all (the rest: Enter on an id opens it). */
const TREE_MAX = 2000;
let treeSize = 1;

function treeNode(owner, open) {
  const kids = h("ul", { role: "group" });
  const li = h("li", { role: "treeitem", "aria-expanded": "false", "data-id": owner.id,
    "data-name": owner.name.toLowerCase() });
  let loading = null;
  const toggle = h("button", { class: "toggle", type: "button", "aria-label": "Show children of " + owner.name,
    onclick: () => li.expand(li.getAttribute("aria-expanded") !== "true") }, "+");
  // The children, read once (all pages) and kept.
  li.load = () => (loading = loading || all("/owners/" + owner.id + "/children").then(({ items }) => {
    treeSize += items.length;
    kids.replaceChildren(...items.map((c) => treeNode(c, false)));
    if (!items.length) toggle.disabled = true;
  }, (e) => { kids.replaceChildren(h("li", { class: "error" }, e.message)); }));
  li.expand = async (yes) => {
    li.setAttribute("aria-expanded", String(yes));
    toggle.textContent = yes ? "-" : "+";
    kids.hidden = !yes;
    if (yes) await li.load();
  };
  li.append(h("div", { class: "node" }, toggle,
    h("a", { href: "#/owners/" + owner.id, "data-owner": owner.id }, owner.name),
    h("span", { class: "kind" }, owner.kind.toLowerCase())), kids);
  kids.hidden = true;
  if (open) li.expand(true);
  return li;
}
/** Load the whole tree (breadth first, up to TREE_MAX owners), so that a search sees it all. */
async function loadTree() {
  let level = [...$("#tree").querySelectorAll(":scope > li")];
  while (level.length && treeSize < TREE_MAX) {
    await Promise.all(level.map((li) => li.load()));
    level = level.flatMap((li) => [...li.querySelectorAll(":scope > ul > li")]);
  }
}
/** Show the owners whose name or id contains the search, with their ancestors opened. */
async function filterTree() {
  const s = $("#tree-search").value.trim().toLowerCase();
  if (s) await loadTree();
  if (s !== $("#tree-search").value.trim().toLowerCase()) return; // typed on meanwhile
  const visit = (li) => {
    let any = false;
    for (const k of li.querySelectorAll(":scope > ul > li")) any = visit(k) || any;
    const self = !s || li.dataset.name.includes(s) || li.dataset.id.includes(s);
    li.hidden = !(self || any);
    if (s && any) li.expand(true);
    return self || any;
  };
  for (const li of $("#tree").querySelectorAll(":scope > li")) visit(li);
}
function markCurrent() {
  for (const a of document.querySelectorAll("#tree a")) {
    if (location.hash === a.getAttribute("href")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// ---- routing ---------------------------------------------------------------------------------

let view = null; // {kind, id, refresh}

let generation = 0;

/** Show the view the URL names. It is built off-page and shown whole, unless a later
 *  navigation started meanwhile (then the later one is shown). */
async function route() {
  if (!me) return;
  const mine = ++generation;
  // "#/" (or anything unknown) is the acting owner's view; replaced in place, not a navigation.
  if (!/^#\/((owners|wallets)\/[^/]+|webhooks(\/[^/]+)?)$/.test(location.hash)) {
    history.replaceState(null, "", "#/owners/" + me.acting_as.id);
  }
  const [, what, id] = location.hash.split("/");
  markCurrent();
  const el = h("div", {});
  let next = null;
  try {
    if (what === "owners" && id) next = await ownerView(el, id);
    else if (what === "wallets" && id) next = await walletView(el, id);
    else if (what === "webhooks" && id) next = await webhookView(el, id);
    else next = await webhooksView(el);
  } catch (e) {
    el.replaceChildren(h("div", { class: "card" }, h("p", { class: e.status === 404 ? "notfound" : "error",
      id: "message" }, e.status === 404 ? "Not found: nothing with this id is in your reach." : e.message)));
  }
  if (mine !== generation) return;
  view = next;
  $("#main").replaceChildren(el);
  document.body.dataset.ready = "1";
  // How long the first view took from navigation (read by the browser test).
  if (!performance.getEntriesByName("coffer-ready").length) performance.mark("coffer-ready");
}

// ---- owner: balances, total, chart -----------------------------------------------------------

async function ownerView(main, id) {
  const [owner, wallets] = await Promise.all([api("/owners/" + id), all("/owners/" + id + "/wallets")]);
  const display = sessionStorage.getItem("coffer.display") || owner.default_currency;
  const box = h("div", {}), detail = h("div", { id: "entry" });
  const movements = movementsCard(wallets.items);
  movements.onpick = (seq) => showEntry(detail, seq);
  main.replaceChildren(
    h("div", { class: "card" }, h("h1", {}, owner.name),
      h("p", { class: "sub" }, owner.kind + " · " + owner.status + " · " + owner.id)),
    box, wallets.items.length ? movements.el : "", detail);
  const refresh = async () => {
    const fresh = await all("/owners/" + id + "/wallets");
    box.replaceChildren(balancesCard(fresh.items), await overviewCard(id, display), ownerChartCard(id, fresh.items));
    if (wallets.items.length) await movements.load();
  };
  box.replaceChildren(balancesCard(wallets.items), await overviewCard(id, display), ownerChartCard(id, wallets.items));
  if (wallets.items.length) await movements.load();
  return { kind: "owner", id, owners: [id], refresh };
}
const FIELDS = ["posted", "held", "available", "withdrawable", "incoming"];
function balancesCard(wallets) {
  const rows = wallets.map((w) => h("tr", { "data-wallet": w.id },
    td(h("a", { href: "#/wallets/" + w.id }, w.type)), td(w.currency), td(w.status),
    FIELDS.map((f) => num(w[f], { "data-field": f }))));
  return h("section", { class: "card", id: "balances", "aria-labelledby": "balances-h" },
    h("h2", { id: "balances-h" }, "Balances by currency and wallet"),
    wallets.length ? table([["Wallet"], ["Currency"], ["Status"], ...FIELDS.map((f) => [f, 1])], rows)
      : h("p", {}, "No wallets."));
}
async function overviewCard(id, display) {
  const sel = h("select", { onchange: (e) => { sessionStorage.setItem("coffer.display", e.target.value); route(); } },
    ["USD", "EUR", "GBP", "JPY", "SGD", "HKD", "CNY", "AUD"].concat(display).filter((c, i, a) => a.indexOf(c) === i)
      .map((c) => h("option", { value: c, selected: c === display }, c)));
  const card = h("section", { class: "card", id: "overview", "aria-labelledby": "overview-h" },
    h("h2", { id: "overview-h" }, "Total in a display currency"), h("div", { class: "row" }, field("Display currency", sel)));
  let o;
  try {
    o = await api("/owners/" + id + "/overview" + q({ display_currency: display }));
  } catch (e) {
    card.append(h("p", { class: "error" }, e.message));
    return card;
  }
  const age = (t) => {
    const hours = Math.floor((Date.parse(o.at) - Date.parse(t)) / 3600000);
    return hours < 1 ? "under an hour" : hours < 48 ? hours + " h" : Math.floor(hours / 24) + " days";
  };
  const rate = (r) => `${r.base}/${r.quote} ${r.rate} (${r.source}, ${age(r.effective_at)} old)`;
  const rows = o.currencies.map((c) => h("tr", { "data-currency": c.currency }, td(c.currency),
    num(c.posted), num(c.held), num(c.available), num(c.incoming), num(c.converted, { "data-field": "converted" }),
    td(c.rates_used.map(rate).join("; ") || "same currency")));
  const heads = [["Currency"], ["posted", 1], ["held", 1], ["available", 1], ["incoming", 1], ["in " + o.display_currency, 1], ["Rate used"]];
  card.append(h("p", {}, "Total ", h("strong", { id: "total" }, o.total + " " + o.display_currency), " at " + when(o.at)),
    table(heads, rows), h("p", { class: "sub" }, o.rounding));
  return card;
}

// ---- the chart -------------------------------------------------------------------------------

/** A period chooser: last day, last 30 days, or a custom range; calls `onchange(from, to)`. */
function rangePicker(onchange) {
  const kind = h("select", {}, h("option", { value: "day" }, "Last day"),
    h("option", { value: "month", selected: true }, "Last 30 days"), h("option", { value: "custom" }, "Custom"));
  const from = h("input", { type: "datetime-local" }), to = h("input", { type: "datetime-local" });
  const custom = h("div", { class: "row" }, field("From", from), field("To", to));
  const err = h("p", { class: "error", "aria-live": "polite" });
  custom.hidden = true;
  const draw = (f, t) => onchange(f, t).then(() => { err.textContent = ""; }, (e) => { err.textContent = e.message; });
  const fire = () => {
    const now = Date.now();
    custom.hidden = kind.value !== "custom";
    if (kind.value === "custom") {
      if (from.value && to.value) return draw(new Date(from.value).toISOString(), new Date(to.value).toISOString());
      return;
    }
    // A preset period ends a minute from now: it is computed again at each refresh.
    const span = kind.value === "day" ? 86400000 : 30 * 86400000;
    return draw(new Date(now - span).toISOString(), new Date(now + 60000).toISOString());
  };
  kind.addEventListener("change", fire);
  from.addEventListener("change", fire);
  to.addEventListener("change", fire);
  return { el: h("div", {}, h("div", { class: "row" }, field("Period", kind), custom), err), fire };
}

/** A step chart of points [{t, posted, available, seq, kind}] (BigInt values at `scale`). */
function chart(points, scale, currency, onpick) {
  const W = 800, H = 240, L = 70, R = 10, T = 10, B = 24;
  const NS = "http://www.w3.org/2000/svg";
  const s = (tag, attrs) => { const e = document.createElementNS(NS, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", tabindex: "0",
    "aria-label": `Balance over time, ${points.length} entries; use the arrow keys to step through them` });
  const tip = h("p", { class: "tip", "aria-live": "polite" }, points.length ? "Hover or use the arrow keys for exact values." : "No entries in this period.");
  if (!points.length) return h("div", { class: "chart" }, svg, tip);
  const vals = points.flatMap((p) => [p.posted, p.available]);
  let lo = vals.reduce((a, b) => (b < a ? b : a)), hi = vals.reduce((a, b) => (b > a ? b : a));
  if (lo > 0n) lo = 0n;
  if (hi === lo) hi = lo + 1n;
  const t0 = points[0].t, t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - Number(v - lo) / Number(hi - lo)) * (H - T - B);
  svg.append(s("line", { class: "axis", x1: L, x2: W - R, y1: y(0n), y2: y(0n) }));
  for (const v of [lo, hi]) {
    const label = s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" });
    label.textContent = fmt(v, scale);
    svg.append(label);
  }
  const step = (key) => points.map((p, i) => (i ? `H${x(p.t)}V${y(p[key])}` : `M${x(p.t)},${y(p[key])}`)).join("");
  svg.append(s("path", { class: "available", d: step("available") }), s("path", { class: "posted", d: step("posted") }));
  const dots = points.map((p, i) => {
    const c = s("circle", { class: "pt", cx: x(p.t), cy: y(p.posted), r: 4, "data-seq": p.seq,
      "data-posted": fmt(p.posted, scale), "data-available": fmt(p.available, scale) });
    c.addEventListener("mouseenter", () => pick(i));
    c.addEventListener("click", () => onpick && onpick(p));
    svg.append(c);
    return c;
  });
  let at = points.length - 1;
  function pick(i) {
    at = i;
    dots.forEach((d, j) => d.classList.toggle("sel", j === i));
    const p = points[i];
    tip.textContent = `${when(new Date(p.t).toISOString())} · entry #${p.seq} ${p.kind} · posted ${fmt(p.posted, scale)} ${currency} · available ${fmt(p.available, scale)} ${currency}`;
  }
  svg.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      e.preventDefault();
      pick(Math.min(points.length - 1, Math.max(0, at + (e.key === "ArrowLeft" ? -1 : 1))));
    } else if (e.key === "Enter" && onpick) onpick(points[at]);
  });
  return h("div", { class: "chart" }, svg,
    h("div", { class: "legend" }, h("span", { class: "p" }, "— posted"), h("span", { class: "a" }, "- - available")), tip);
}
/** A wallet's history lines in [from, to), oldest first, as chart points. */
async function walletPoints(id, from, to) {
  const { items, truncated } = await all("/wallets/" + id + "/history" + q({ from, to }));
  const points = items.reverse().map((l) => ({ t: Date.parse(l.created_at), seq: l.transaction, kind: l.kind,
    posted: dec(l.posted_after).v, available: dec(l.available_after).v, scale: dec(l.posted_after).scale }));
  return { points, truncated };
}
function ownerChartCard(id, wallets) {
  const currencies = [...new Set(wallets.map((w) => w.currency))];
  const out = h("div", {});
  const cur = h("select", {}, currencies.map((c) => h("option", { value: c }, c)));
  const card = h("section", { class: "card", id: "owner-chart", "aria-labelledby": "oc-h" },
    h("h2", { id: "oc-h" }, "Balance over time (all wallets in a currency)"));
  if (!currencies.length) return card;
  const draw = async (from, to) => {
    const c = cur.value;
    const mine = wallets.filter((w) => w.currency === c);
    // Each wallet's balance at `from`, then every line of every wallet in order: exact sums.
    const opening = await api("/owners/" + id + "/balances" + q({ currency: c, at: from }));
    const now = {};
    let scale = 0;
    for (const b of opening.balances) { now[b.id] = [dec(b.posted).v, dec(b.available).v]; scale = dec(b.posted).scale; }
    const lines = [];
    for (const w of mine) {
      const { points } = await walletPoints(w.id, from, to);
      for (const p of points) lines.push(Object.assign({ wallet: w.id }, p));
      if (points.length) scale = points[0].scale;
    }
    lines.sort((a, b) => a.seq - b.seq);
    const points = [];
    for (const l of lines) {
      now[l.wallet] = [l.posted, l.available];
      const sum = Object.values(now).reduce((a, [p, v]) => [a[0] + p, a[1] + v], [0n, 0n]);
      const last = points[points.length - 1];
      const p = { t: l.t, seq: l.seq, kind: l.kind, posted: sum[0], available: sum[1] };
      if (last && last.seq === l.seq) points[points.length - 1] = p; else points.push(p);
    }
    out.replaceChildren(chart(points, scale, c, (p) => { location.hash = "#/wallets/" + lines.find((l) => l.seq === p.seq).wallet; }));
  };
  const picker = rangePicker(draw);
  cur.addEventListener("change", () => picker.fire());
  card.append(h("div", { class: "row" }, field("Currency", cur), picker.el), out);
  picker.fire();
  return card;
}

// ---- a wallet: figures, chart, movements, holds, alerts ---------------------------------------

async function walletView(main, id) {
  const w = await api("/wallets/" + id);
  const figures = h("div", { class: "figures", id: "figures" });
  const chartBox = h("div", {}), holds = h("div", {}), incoming = h("div", {}), alerts = h("div", {});
  const movements = movementsCard([w]);
  const detail = h("div", { id: "entry" });
  const pickEntry = (seq) => showEntry(detail, seq);
  const drawChart = async (from, to) => {
    const { points, truncated } = await walletPoints(id, from, to);
    const scale = dec(w.posted).scale;
    chartBox.replaceChildren(chart(points, scale, w.currency, (p) => pickEntry(p.seq)),
      truncated ? h("p", { class: "sub" }, "Only the first 5000 entries are drawn.") : "");
  };
  const picker = rangePicker(drawChart);
  const fill = (now) => figures.replaceChildren(...FIELDS.map((f) => h("div", { class: "figure" },
    h("div", { class: "sub" }, f), h("div", { class: "v", "data-field": f }, now[f]))));
  const sideLists = async () => {
    const [hs, is, as] = await Promise.all([api("/wallets/" + id + "/holds"), api("/wallets/" + id + "/incoming"),
      api("/wallets/" + id + "/alerts")]);
    holds.replaceChildren(hs.data.length ? table([["Hold"], ["amount", 1], ["captured", 1], ["Status"], ["Expires"], ["Created"]],
      hs.data.map((x) => h("tr", {}, td(x.id), num(x.amount), num(x.captured), td(x.status), td(when(x.expires_at) || "never"), td(when(x.created_at)))))
      : h("p", {}, "No open holds."));
    incoming.replaceChildren(is.data.length ? table([["Incoming credit"], ["amount", 1], ["Status"], ["Announced"]],
      is.data.map((x) => h("tr", { "data-incoming": x.id }, td(x.id), num(x.amount), td(x.status), td(when(x.created_at)))))
      : h("p", {}, "No pending incoming credits."));
    alerts.replaceChildren(as.data.length ? table([["Alert"], ["Field"], ["Direction"], ["threshold", 1]],
      as.data.map((a) => h("tr", {}, td(a.id), td(a.field), td(a.direction), num(a.threshold)))) : h("p", {}, "No alerts."));
  };
  fill(w);
  main.replaceChildren(
    h("div", { class: "card" }, h("h1", {}, w.type + " " + w.currency),
      h("p", { class: "sub" }, w.status + " · wallet " + w.id + " · owner ", h("a", { href: "#/owners/" + w.owner }, w.owner),
        " · min balance " + w.min_balance + " · overdraft " + w.overdraft_limit)),
    h("section", { class: "card", "aria-label": "Balances" }, figures, h("p", { class: "sub" },
      "Incoming credits are counted in incoming until they settle.")),
    h("section", { class: "card", id: "wallet-chart", "aria-labelledby": "wc-h" }, h("h2", { id: "wc-h" }, "Balance over time"), picker.el, chartBox),
    movements.el, detail,
    h("section", { class: "card", id: "holds", "aria-labelledby": "holds-h" }, h("h2", { id: "holds-h" }, "Open holds"), holds),
    h("section", { class: "card", id: "incoming", "aria-labelledby": "in-h" }, h("h2", { id: "in-h" }, "Pending incoming credits"), incoming),
    h("section", { class: "card", id: "alerts", "aria-labelledby": "alerts-h" }, h("h2", { id: "alerts-h" }, "Balance alerts"), alerts),
    statementCard(id));
  movements.onpick = pickEntry;
  picker.fire();
  await Promise.all([movements.load(), sideLists()]);
  const refresh = async () => {
    fill(await api("/wallets/" + id));
    await Promise.all([picker.fire(), movements.load(), sideLists()]);
  };
  return { kind: "wallet", id, owners: [w.owner], refresh };
}
const KINDS = ["DEPOSIT", "PAYOUT", "TRANSFER", "FEE", "REVERSAL", "FX_CONVERSION", "HOLD_CREATE", "HOLD_CAPTURE",
  "HOLD_RELEASE", "HOLD_EXPIRE", "INCOMING_CREATE", "INCOMING_SETTLE", "INCOMING_CANCEL", "GENERAL"];
const PAGE = 25;
/** The movements of some wallets (one, or all of an owner's), newest first, filtered: each
 *  wallet's list is read page by page and merged by entry number, an entry once. */
function movementsCard(wallets) {
  const single = wallets.length === 1;
  const byId = Object.fromEntries(wallets.map((w) => [w.id, w]));
  const kind = h("select", {}, h("option", { value: "" }, "any"), KINDS.map((k) => h("option", { value: k }, k)));
  const from = h("input", { type: "datetime-local" }), to = h("input", { type: "datetime-local" });
  const ref = h("input", { placeholder: "reference" }), mk = h("input", { placeholder: "key" }), mv = h("input", { placeholder: "value" });
  const min = h("input", { placeholder: "e.g. -10.00", inputmode: "decimal" }), max = h("input", { placeholder: "e.g. 500", inputmode: "decimal" });
  const list = h("div", {}), more = h("button", { type: "button", class: "plain" }, "Older");
  const iso = (el) => (el.value ? new Date(el.value).toISOString() : "");
  const m = { onpick: null };
  let sources = [], seen = new Set();
  const params = (wallet) => ({ wallet, kind: kind.value, from: iso(from), to: iso(to), reference: ref.value.trim(),
    metadata_key: mk.value.trim(), metadata_value: mv.value.trim(), min_amount: min.value.trim(), max_amount: max.value.trim() });
  async function fill(src) {
    while (src.buf.length < PAGE && !src.done) {
      const r = await api("/transactions" + q(Object.assign(params(src.id), { limit: PAGE, cursor: src.cursor || "" })));
      src.buf.push(...r.data);
      src.cursor = r.next_cursor;
      src.done = !r.next_cursor;
    }
  }
  async function next() {
    const out = [];
    while (out.length < PAGE) {
      if (sources.some((x) => !x.buf.length && !x.done)) await Promise.all(sources.map(fill));
      let best = null;
      for (const x of sources) if (x.buf.length && (!best || x.buf[0].seq > best.buf[0].seq)) best = x;
      if (!best) break;
      const t = best.buf.shift();
      if (!seen.has(t.seq)) { seen.add(t.seq); out.push(t); }
    }
    return out;
  }
  const row = (t) => {
    const mine = t.lines.filter((l) => byId[l.account]);
    const one = mine[0] || {};
    const cells = single ? [num(one.posted || ""), num(one.held || ""), num(one.posted_after || "")]
      : [td(mine.map((l) => `${byId[l.account].type} ${l.currency} ${l.posted}`).join(" · "))];
    return h("tr", { class: "clickable", tabindex: "0", "data-seq": t.seq, onclick: () => m.onpick(t.seq),
      onkeydown: (e) => e.key === "Enter" && m.onpick(t.seq) },
    td("#" + t.seq), td(when(t.created_at)), td(t.kind), cells, td((t.metadata && (t.metadata.reference || t.metadata.description)) || ""));
  };
  async function page(append) {
    let found;
    try {
      if (!append) { sources = wallets.map((w) => ({ id: w.id, buf: [], cursor: null, done: false })); seen = new Set(); }
      found = await next();
    } catch (e) {
      list.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
      return;
    }
    more.hidden = !sources.some((x) => x.buf.length || !x.done);
    const rows = found.map(row);
    const heads = single ? [["posted", 1], ["held", 1], ["posted after", 1]] : [["Posted, by wallet"]];
    const body = list.querySelector("tbody");
    if (append && body) body.append(...rows);
    else list.replaceChildren(rows.length ? table([["Entry"], ["Time"], ["Kind"], ...heads, ["Reference"]], rows)
      : h("p", {}, "No movements match."));
  }
  more.addEventListener("click", () => page(true));
  const form = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); page(false); } },
    field("Kind", kind), field("From time", from), field("To time", to), field("Reference", ref),
    field("Metadata key", mk), field("Metadata value", mv), field("Min amount", min), field("Max amount", max),
    h("button", { type: "submit" }, "Filter"));
  m.el = h("section", { class: "card", id: "movements", "aria-labelledby": "mv-h" }, h("h2", { id: "mv-h" }, "Movements"), form, list, more);
  m.load = () => page(false);
  return m;
}
/** An entry's detail in `box` (or why it cannot be shown). */
async function showEntry(box, seq) {
  try {
    box.replaceChildren(await entryCard(seq));
  } catch (e) {
    box.replaceChildren(h("p", { class: "card error" }, e.message));
  }
  box.scrollIntoView({ block: "nearest" });
}
async function entryCard(seq) {
  const t = await api("/transactions/" + seq);
  const rows = t.lines.map((l) => h("tr", {}, td(l.redacted ? "(not in your reach)" : l.account), td(l.currency),
    num(l.posted || ""), num(l.held || ""), num(l.incoming || ""), num(l.posted_after || "")));
  const meta = Object.keys(t.metadata || {}).length ? h("pre", {}, JSON.stringify(t.metadata, null, 2)) : "";
  return h("section", { class: "card", "aria-labelledby": "entry-h" },
    h("h2", { id: "entry-h" }, "Entry #" + t.seq + " · " + t.kind),
    h("p", { class: "sub" }, when(t.created_at) + " · idempotency key " + t.idempotency_key + (t.reverses ? " · reverses #" + t.reverses : "")),
    table([["Account"], ["Currency"], ["posted", 1], ["held", 1], ["incoming", 1], ["posted after", 1]], rows), meta);
}
function statementCard(wallet) {
  const today = new Date().toISOString().slice(0, 10);
  const from = h("input", { type: "date", value: today.slice(0, 8) + "01" }), to = h("input", { type: "date", value: today });
  const msg = h("p", { class: "sub", role: "status" });
  async function download() {
    try {
      const r = await api("/wallets/" + wallet + "/statement" + q({ from: from.value, to: to.value }), { raw: true, headers: { Accept: "text/csv" } });
      const url = URL.createObjectURL(await r.blob());
      const a = h("a", { href: url, download: `statement-${wallet}-${from.value}-${to.value}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
      msg.textContent = "Downloaded.";
    } catch (e) {
      msg.textContent = e.message;
    }
  }
  return h("section", { class: "card", id: "statement", "aria-labelledby": "st-h" }, h("h2", { id: "st-h" }, "Statement"),
    h("div", { class: "row" }, field("Statement from", from), field("Statement to", to),
      h("button", { type: "button", onclick: download }, "Download CSV")), msg);
}

// ---- webhooks ----------------------------------------------------------------------------------

async function webhooksView(main) {
  const list = await api("/webhook-endpoints");
  main.replaceChildren(h("section", { class: "card", id: "webhooks", "aria-labelledby": "wh-h" }, h("h2", { id: "wh-h" }, "Webhook endpoints"),
    list.data.length ? table([["URL"], ["Status"], ["Types"], ["Owner"]], list.data.map((e) => h("tr", {},
      td(h("a", { href: "#/webhooks/" + e.id }, e.url)), td(e.status), td((e.types || []).join(", ") || "all"), td(e.owner || ""))))
      : h("p", {}, "No webhook endpoints.")));
  return { kind: "webhooks", owners: [], refresh: null };
}
async function webhookView(main, id) {
  const e = await api("/webhook-endpoints/" + id);
  const from = h("input", { placeholder: "event id, e.g. 12.0" });
  const msg = h("p", { class: "sub", role: "status" });
  const redeliver = async (ev) => {
    ev.preventDefault();
    try {
      await api("/webhook-endpoints/" + id + "/redeliver", { method: "POST", body: { from_event: from.value.trim() } });
      msg.textContent = "Redelivery from " + from.value.trim() + " scheduled.";
    } catch (err) {
      msg.textContent = err.message;
    }
  };
  const attempts = e.attempts || e.recent_attempts || [];
  main.replaceChildren(h("section", { class: "card", id: "webhook" }, h("h1", {}, e.url),
    h("p", { class: "sub" }, e.status + " · " + e.id),
    h("pre", {}, JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k]) => !/attempts/.test(k))), null, 2)),
    h("form", { class: "row", onsubmit: redeliver }, field("Redeliver from event", from), h("button", { type: "submit" }, "Redeliver")), msg),
  h("section", { class: "card", "aria-labelledby": "dl-h" }, h("h2", { id: "dl-h" }, "Delivery log"),
    attempts.length ? table(Object.keys(attempts[0]).map((k) => [k]), attempts.map((a) => h("tr", {},
      Object.values(a).map((v) => td(typeof v === "object" && v !== null ? JSON.stringify(v) : v ?? "")))))
      : h("p", {}, "No attempts yet.")));
  return { kind: "webhook", owners: [], refresh: null };
}

// ---- live: one event stream for the whole page ---------------------------------------------------

const live = (() => {
  let ctl = null, cursor = "end", timer = null;
  const badge = (text, cls) => { const b = $("#live"); b.textContent = text; b.className = "live " + cls; };
  function changed(ev) {
    // Refresh the view shown when the event concerns it (its wallet, or an owner it shows).
    if (!view || !view.refresh) return;
    const hit = view.kind === "wallet" ? ev.wallet === view.id : (ev.owners || []).some((o) => view.owners.includes(o));
    if (!hit) return;
    clearTimeout(timer);
    timer = setTimeout(() => view && view.refresh && view.refresh().catch(() => {}), 100);
  }
  async function run(signal) {
    while (!signal.aborted) {
      try {
        const r = await fetch(API + "/events/stream" + q({ cursor }), { headers: headers({ Accept: "text/event-stream" }), signal });
        if (!r.ok) throw new Error("HTTP " + r.status);
        badge("live", "on");
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let data = "", id = null;
            for (const line of block.split("\n")) {
              if (line.startsWith("data:")) data += line.slice(5).trim();
              else if (line.startsWith("id:")) id = line.slice(3).trim();
            }
            if (id) cursor = id;
            if (data) changed(JSON.parse(data));
          }
        }
      } catch {
        if (signal.aborted) return;
      }
      badge("reconnecting", "off");
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  }
  return {
    start() { this.stop(); cursor = "end"; ctl = new AbortController(); run(ctl.signal); },
    stop() { if (ctl) ctl.abort(); ctl = null; },
  };
})();

start();
