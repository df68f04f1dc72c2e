// SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only
// The dashboard: polls /api/v1/summary and /api/v1/events on this node and
// draws them. Everything an attacker chose (user agents, numbers) goes into
// the page as text, never as HTML.
"use strict";

const SUMMARY_EVERY_MS = 3000;
const EVENTS_EVERY_MS = 2000;
let range = 60; // minutes shown in the plot
let lastSummary = null;
let lastHeard = 0;
let updates = 0;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fmt(n) {
  return typeof n === "number" ? n.toLocaleString("en-GB") : "–";
}

function when(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/\.\d+Z$/, "").replace(/Z$/, "");
}

function fillRows(tbody, rows) {
  const frag = document.createDocumentFragment();
  for (const cells of rows) {
    const tr = el("tr");
    for (const c of cells) {
      const td = el("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      tr.appendChild(td);
    }
    frag.appendChild(tr);
  }
  tbody.replaceChildren(frag);
}

function byTags(local, peers) {
  const span = el("span");
  if (local) span.appendChild(el("span", "local", "tag by-local"));
  if (peers) span.appendChild(el("span", peers + (peers === 1 ? " peer" : " peers"), "tag by-peers"));
  return span;
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  return { status: r.status, body };
}

function heard() {
  lastHeard = Date.now();
  updates++;
  const u = $("updated");
  u.dataset.updates = String(updates);
  u.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
  const live = $("live");
  live.textContent = "live";
  live.className = "pill live";
}

function checkStale() {
  if (Date.now() - lastHeard > 10000) {
    const live = $("live");
    live.textContent = lastHeard ? "no answer" : "connecting";
    live.className = "pill stale";
  }
}

// ---- events over time ------------------------------------------------------

function drawChart() {
  const canvas = $("chart");
  const tl = lastSummary && lastSummary.events_over_time;
  if (!tl) return;
  const counts = tl.counts.slice(-range);
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 960, h = canvas.clientHeight || 200;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(1, ...counts);
  const bw = w / counts.length;
  // grid: a line at half and full height of the peak
  ctx.strokeStyle = "#dde1e6";
  ctx.beginPath();
  ctx.moveTo(0, h - 1); ctx.lineTo(w, h - 1);
  ctx.moveTo(0, h / 2); ctx.lineTo(w, h / 2);
  ctx.stroke();
  ctx.fillStyle = "#c0392b";
  let total = 0, bars = 0;
  counts.forEach((c, i) => {
    total += c;
    if (!c) return;
    const bh = Math.max(1, (c / max) * (h - 4));
    ctx.fillRect(i * bw + (bw > 3 ? 1 : 0), h - bh, Math.max(1, bw - (bw > 3 ? 2 : 0)), bh);
    bars++;
  });
  canvas.dataset.total = String(total);
  canvas.dataset.bars = String(bars);
  canvas.dataset.max = String(max);
  const bucket = tl.bucket_seconds * 1000;
  const end = Date.parse(tl.start) + tl.counts.length * bucket;
  const start = end - counts.length * bucket;
  $("chart-from").textContent = new Date(start).toISOString().slice(11, 16) + " UTC";
  $("chart-to").textContent = "now";
  $("chart-peak").textContent = "peak " + fmt(max) + " a minute, " + fmt(total) + " in all";
  $("c-hour").textContent = fmt(tl.counts.slice(-60).reduce((a, b) => a + b, 0));
}

// ---- the summary -----------------------------------------------------------

function sourceRow(id, s) {
  const tds = $(id).querySelectorAll("td");
  tds[0].textContent = fmt(s.local_only);
  tds[1].textContent = fmt(s.both);
  tds[2].textContent = fmt(s.peers_only);
}

function sourceBar(id, s) {
  const total = s.local_only + s.both + s.peers_only;
  const bar = $(id);
  const parts = [["by-local", s.local_only], ["by-both", s.both], ["by-peers", s.peers_only]];
  bar.replaceChildren(...parts.map(([cls, n]) => {
    const span = el("span", null, cls);
    span.style.width = total ? (100 * n / total) + "%" : "0";
    return span;
  }));
}

function showDHT(d) {
  const state = d.state === "off" ? (d.sharing ? "off (not built)" : "off (sharing off)") : d.state;
  $("dht-state").textContent = state;
  const dl = $("dht");
  const items = [["state", state]];
  if (d.state !== "off") {
    items.push(["peers reporting", fmt(d.peers_reporting)],
               ["published", fmt(d.puts) + " (" + fmt(d.puts_failed) + " failed)"],
               ["lookups", fmt(d.gets)],
               ["values", fmt(d.values_accepted) + " accepted, " + fmt(d.values_rejected) + " rejected"],
               ["node key", d.node_key_id || "–"]);
  }
  dl.replaceChildren(...items.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
}

function showSummary(s) {
  lastSummary = s;
  $("node-version").textContent = "v" + s.node.version + " · node " + s.node.node_id;
  $("c-events").textContent = fmt(s.store.events);
  $("c-ips").textContent = fmt(s.store.ip_addresses);
  $("c-numbers").textContent = fmt(s.store.numbers);
  const c = s.counters || {};
  const dropped = (c.events_dropped_queue_full || 0) + (c.events_dropped_store_error || 0) +
                  (c.udp_dropped_kernel || 0);
  $("c-dropped").textContent = fmt(dropped);
  sourceRow("src-ip", s.sources.ip_addresses);
  sourceRow("src-number", s.sources.numbers);
  sourceBar("bar-ip", s.sources.ip_addresses);
  sourceBar("bar-number", s.sources.numbers);
  showDHT(s.dht);
  fillRows(document.querySelector("#top-ips tbody"), s.top_ip_addresses.map(
    (t) => [t.key, fmt(t.count), when(t.last_seen), byTags(t.local, t.peers)]));
  fillRows(document.querySelector("#top-numbers tbody"), s.top_numbers.map(
    (t) => [t.key, fmt(t.count), when(t.last_seen), byTags(t.local, t.peers)]));
  fillRows(document.querySelector("#user-agents tbody"), s.user_agents.map(
    (u) => [u.user_agent, fmt(u.addresses)]));
  drawChart();
}

async function pollSummary() {
  try {
    const r = await getJSON("/api/v1/summary");
    if (r.status === 200 && r.body && r.body.ready) {
      showSummary(r.body);
      heard();
    } else if (r.status === 200) {
      heard(); // the node is computing its first summary
      setTimeout(pollSummary, 500);
      return;
    }
  } catch (e) { /* the node is away: the pill says so */ }
  setTimeout(pollSummary, SUMMARY_EVERY_MS);
}

async function pollEvents() {
  try {
    const r = await getJSON("/api/v1/events?limit=20");
    if (r.status === 200 && r.body) {
      fillRows(document.querySelector("#recent-events tbody"), r.body.events.map(
        (e) => [when(e.time), e.source_ip, e.transport, e.method, e.called_number, e.user_agent]));
      heard();
    }
  } catch (e) { /* as above */ }
  setTimeout(pollEvents, EVENTS_EVERY_MS);
}

// ---- the lookup box --------------------------------------------------------

async function lookup(ev) {
  ev.preventDefault();
  const q = $("lookup-input").value.trim();
  const out = $("lookup-result");
  if (!q) return;
  out.hidden = false;
  out.className = "result";
  out.replaceChildren(el("span", "looking up " + q + " …"));
  try {
    const r = await getJSON("/api/v1/lookup/" + encodeURIComponent(q) + "?timeout=2s");
    const b = r.body || {};
    if (r.status === 200 || r.status === 404) {
      out.className = "result" + (b.listed ? " listed" : "");
      const head = el("strong", b.listed ? q + " is listed" : q + " is not listed");
      const dl = el("dl");
      const add = (k, v) => { if (v !== undefined && v !== null && v !== "") dl.append(el("dt", k), el("dd", v)); };
      add("key", b.kind + " " + b.key);
      if (b.listed) {
        add("seen", fmt(b.count) + " times, first " + when(b.first_seen) + ", last " + when(b.last_seen));
        add("expires", when(b.expires));
        add("methods", (b.methods || []).join(", "));
        add("transports", (b.transports || []).join(", "));
        add("user agents", (b.user_agents || []).join(" | "));
        add("dialled as", (b.raw_forms || []).join(", "));
        add("reported by", (b.reports || []).map((p) => p.reporter + " (" + p.count + ")").join(", "));
      }
      add("answered by", b.answered_by);
      add("DHT", b.dht);
      out.replaceChildren(head, dl);
    } else {
      out.className = "result error";
      out.replaceChildren(el("span", (b && b.error) || ("HTTP " + r.status)));
    }
  } catch (e) {
    out.className = "result error";
    out.replaceChildren(el("span", "the node did not answer"));
  }
}

function init() {
  $("lookup-form").addEventListener("submit", lookup);
  for (const b of document.querySelectorAll(".range button")) {
    b.addEventListener("click", () => {
      range = Number(b.dataset.range);
      for (const o of document.querySelectorAll(".range button")) o.classList.toggle("on", o === b);
      drawChart();
    });
  }
  window.addEventListener("resize", drawChart);
  setInterval(checkStale, 2000);
  pollSummary();
  pollEvents();
}

document.addEventListener("DOMContentLoaded", init);
