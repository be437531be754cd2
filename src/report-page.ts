// The failure report as one self-contained HTML page: the data inline as JSON, a canvas
// timeline (members, faults, clients, watches) that draws only what is visible, zoom with
// the wheel, pan by dragging, details on hover and click. No network, no external files.
import { buildReport, humanSummary, type ReportData } from "./report.js";
import type { RunResult } from "./runner.js";

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that can sit inside a script element. */
function inlineJson(x: unknown): string {
  return JSON.stringify(x)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

const STYLE = `
*{box-sizing:border-box}body{margin:0;font:13px/1.4 system-ui,sans-serif;color:#222;background:#fafafa}
header{padding:10px 16px;background:#fff;border-bottom:1px solid #ddd}
h1{font-size:17px;margin:0 0 4px}.verdict-violation{color:#b00020}.verdict-ok{color:#1b7a1b}.verdict-unknown{color:#a66b00}
pre{margin:4px 0;white-space:pre-wrap;font:12px/1.35 ui-monospace,monospace}
#banner{margin:8px 16px;padding:8px 12px;border:2px solid #b00020;background:#fff0f0;border-radius:4px}
#banner h2{font-size:15px;margin:0 0 4px;color:#b00020}
.violation{margin:6px 0;padding-top:6px;border-top:1px dashed #e3a0a0}.violation:first-of-type{border-top:none}
a.bad-op,a.bad-watch,a.goto{color:#b00020;cursor:pointer;text-decoration:underline;margin-right:8px}
#toolbar{padding:6px 16px;display:flex;gap:8px;align-items:center}
#toolbar button{font:inherit;padding:2px 10px}
#wrap{position:relative;margin:0 16px;border:1px solid #ccc;background:#fff}
canvas{display:block;width:100%;cursor:grab}
#tip{position:absolute;pointer-events:none;background:#222;color:#fff;padding:4px 6px;border-radius:3px;font-size:12px;max-width:560px;display:none;white-space:pre-wrap}
#details{margin:8px 16px 24px;padding:8px 12px;background:#fff;border:1px solid #ccc;min-height:40px}
#details dt{font-weight:600;float:left;clear:left;width:140px}#details dd{margin:0 0 2px 150px;font-family:ui-monospace,monospace;font-size:12px}
.legend span{display:inline-block;width:12px;height:10px;margin:0 3px 0 10px;vertical-align:middle}
`;

// The page's script: plain JavaScript, written for the browser.
const SCRIPT = `
"use strict";
const D = JSON.parse(document.getElementById("report-data").textContent);
const cv = document.getElementById("timeline"), ctx = cv.getContext("2d");
const tip = document.getElementById("tip"), details = document.getElementById("details");
const ROW = 18, LABEL = 90, TOP = 22;
const COLORS = {leader:"#2e7d32",follower:"#90caf9",candidate:"#ffb74d","pre-candidate":"#ffe0b2",down:"#9e9e9e",
  ok:"#5c9ded",error:"#b39ddb",unknown:"#f0c36d",bad:"#d50000",fault:"#ef9a9a",events:"#1565c0",progress:"#9e9e9e",
  created:"#43a047",canceled:"#ff6f00",werror:"#8e24aa",
  crash:"#d50000",snapshot:"#6a1b9a",validation:"#00897b",restore:"#ef6c00",upload:"#1e88e5"};
const secs = (us) => (us / 1e6).toFixed(3) + "s";
const clients = [...new Set(D.ops.map((o) => o.client))].sort((a, b) => a - b);
const rows = [];
for (const m of D.members) rows.push({kind:"member", label:m.name, m});
const faultLanes = [];
for (const f of [...D.faults].sort((a, b) => a.fromUs - b.fromUs)) {
  let lane = faultLanes.findIndex((end) => end <= f.fromUs);
  if (lane < 0) { lane = faultLanes.length; faultLanes.push(0); }
  faultLanes[lane] = f.toUs; f.lane = lane;
}
for (let i = 0; i < faultLanes.length; i++) rows.push({kind:"faults", label:i === 0 ? "faults" : "", lane:i});
const opsByClient = new Map(clients.map((c) => [c, []]));
for (const o of D.ops) opsByClient.get(o.client).push(o);
for (const c of clients) rows.push({kind:"client", label:"client " + c, client:c, ops:opsByClient.get(c)});
for (const w of D.watches) rows.push({kind:"watch", label:"watch " + w.id + " (c" + w.client + ")", w});
rows.forEach((r, i) => { r.y = TOP + i * ROW; });
let t0 = 0, t1 = Math.max(1, D.endUs);
let width = 0, height = TOP + rows.length * ROW + 4;
function resize() {
  width = cv.parentElement.clientWidth;
  const dpr = window.devicePixelRatio || 1;
  cv.width = width * dpr; cv.height = height * dpr; cv.style.height = height + "px";
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0); draw();
}
const xOf = (us) => LABEL + ((us - t0) / (t1 - t0)) * (width - LABEL);
const usOf = (x) => t0 + ((x - LABEL) / (width - LABEL)) * (t1 - t0);
let selected = null;
function bar(x0, x1, y, h, color) {
  const a = Math.max(LABEL, x0), b = Math.min(width, x1);
  if (b < LABEL || a > width) return;
  ctx.fillStyle = color; ctx.fillRect(a, y, Math.max(1, b - a), h);
}
function draw() {
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui,sans-serif"; ctx.textBaseline = "middle";
  // time axis
  ctx.fillStyle = "#555"; ctx.strokeStyle = "#eee";
  const span = t1 - t0, step = Math.pow(10, Math.floor(Math.log10(span / 8)));
  const tick = span / step > 40 ? step * 5 : span / step > 16 ? step * 2 : step;
  for (let t = Math.ceil(t0 / tick) * tick; t <= t1; t += tick) {
    const x = xOf(t); ctx.beginPath(); ctx.moveTo(x, TOP - 4); ctx.lineTo(x, height); ctx.stroke();
    ctx.fillText(secs(t), x + 2, 9);
  }
  for (const v of D.violations) if (v.atUs !== null) { ctx.fillStyle = "rgba(213,0,0,.25)"; ctx.fillRect(xOf(v.atUs) - 1, TOP, 2, height); }
  const vis = (a, b) => b >= t0 && a <= t1;
  for (const r of rows) {
    ctx.fillStyle = "#333"; ctx.fillText(r.label, 4, r.y + ROW / 2);
    if (r.kind === "member") {
      for (const s of r.m.spans) if (vis(s.fromUs, s.toUs)) bar(xOf(s.fromUs), xOf(s.toUs), r.y + 3, ROW - 6, COLORS[s.state]);
      for (const p of r.m.pauses) if (vis(p.fromUs, p.toUs)) bar(xOf(p.fromUs), xOf(p.toUs), r.y + 1, 3, "#000");
      for (const f of D.faults) if (f.nodes.includes(r.m.name) && vis(f.fromUs, f.toUs)) bar(xOf(f.fromUs), xOf(f.toUs), r.y + ROW - 4, 3, "#e53935");
      for (const m of r.m.marks) if (vis(m.atUs, m.atUs)) bar(xOf(m.atUs) - 1, xOf(m.atUs) + 1, r.y, ROW, COLORS[m.kind] ?? "#444");
    } else if (r.kind === "faults") {
      for (const f of D.faults) if (f.lane === r.lane && vis(f.fromUs, f.toUs)) bar(xOf(f.fromUs), xOf(f.toUs), r.y + 3, ROW - 6, COLORS.fault);
    } else if (r.kind === "client") {
      // binary search for the first visible operation: draw what is visible only
      const ops = r.ops; let lo = 0, hi = ops.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if ((ops[mid].returnUs ?? Infinity) < t0) lo = mid + 1; else hi = mid; }
      for (let i = Math.max(0, lo - 4); i < ops.length && ops[i].callUs <= t1; i++) {
        const o = ops[i], end = o.returnUs ?? t1;
        if (!vis(o.callUs, end)) continue;
        bar(xOf(o.callUs), xOf(end), r.y + 4, ROW - 8, o.bad ? COLORS.bad : COLORS[o.status]);
        if (o.returnUs === null) { ctx.fillStyle = COLORS.unknown; ctx.fillText("…", Math.min(width - 8, xOf(end) - 8), r.y + ROW / 2); }
        // the linearization tick once the bar is wide enough to show it apart
        if (o.linUs !== null && vis(o.linUs, o.linUs) && xOf(end) - xOf(o.callUs) > 4) bar(xOf(o.linUs) - 1, xOf(o.linUs) + 1, r.y + 1, ROW - 2, "#000");
        if (o === selected) { ctx.strokeStyle = "#000"; ctx.strokeRect(xOf(o.callUs), r.y + 3, Math.max(2, xOf(end) - xOf(o.callUs)), ROW - 6); ctx.strokeStyle = "#eee"; }
      }
    } else {
      const w = r.w;
      if (w.bad) bar(LABEL, width, r.y + 1, ROW - 2, "#fff0f0");
      bar(xOf(w.callUs) - 1, xOf(w.callUs) + 1, r.y + 2, ROW - 4, "#000");
      for (const x of w.responses) if (vis(x.atUs, x.atUs)) {
        const c = x.bad ? COLORS.bad : x.kind === "error" ? COLORS.werror : COLORS[x.kind];
        bar(xOf(x.atUs) - (x.bad ? 3 : 1), xOf(x.atUs) + (x.bad ? 3 : 1), r.y + 3, ROW - 6, c);
      }
    }
  }
}
function hit(x, y) {
  const r = rows[Math.floor((y - TOP) / ROW)];
  if (!r || x < LABEL) return null;
  const t = usOf(x), slack = (4 * (t1 - t0)) / (width - LABEL);
  if (r.kind === "client") { const o = r.ops.find((q) => q.callUs - slack <= t && t <= (q.returnUs ?? t1) + slack); return o ? {op: o} : null; }
  if (r.kind === "watch") { const x2 = r.w.responses.find((q) => Math.abs(q.atUs - t) <= slack); return x2 ? {watch: r.w, resp: x2} : {watch: r.w}; }
  if (r.kind === "faults") { const f = D.faults.find((f) => f.lane === r.lane && f.fromUs - slack <= t && t <= f.toUs + slack); return f ? {fault: f} : null; }
  const m = r.m.marks.find((q) => Math.abs(q.atUs - t) <= slack); if (m) return {text: r.m.name + " " + secs(m.atUs) + ": " + m.text};
  const here = D.faults.filter((f) => f.nodes.includes(r.m.name) && f.fromUs <= t && t <= f.toUs).map((f) => f.text);
  const s = r.m.spans.find((q) => q.fromUs <= t && t <= q.toUs);
  return s ? {text: r.m.name + " " + secs(s.fromUs) + ".." + secs(s.toUs) + ": " + s.text + (here.length ? "\\nfaults: " + here.join("; ") : "")} : null;
}
function short(h) {
  if (h.op) return "client " + h.op.client + ": " + h.op.request + " -> " + h.op.response;
  if (h.resp) return "watch " + h.watch.id + " " + secs(h.resp.atUs) + ": " + h.resp.text;
  if (h.watch) return h.watch.request;
  if (h.fault) return h.fault.text;
  return h.text;
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => "&#" + c.charCodeAt(0) + ";"); }
function showOp(o) {
  selected = o;
  const rowsHtml = [["operation", "#" + o.id + " by client " + o.client + (o.member ? " via " + o.member : "")],
    ["request", o.request], ["response", o.response], ["called", secs(o.callUs)],
    ["returned", o.returnUs === null ? "never (outcome unknown)" : secs(o.returnUs)],
    ["linearized", o.linUs === null ? (o.bad ? "could not be placed" : "not in the checked order") : secs(o.linUs)],
    ["state before", o.before ?? "-"], ["state after", o.after ?? "-"]];
  details.innerHTML = '<dl class="op-details' + (o.bad ? ' bad' : '') + '">' + rowsHtml.map(([k, v]) => "<dt>" + k + "</dt><dd>" + esc(v) + "</dd>").join("") + "</dl>";
  draw();
}
function showWatch(w, resp) {
  details.innerHTML = "<dl><dt>watch</dt><dd>#" + w.id + " by client " + w.client + ": " + esc(w.request) + "</dd>" +
    (resp ? "<dt>response</dt><dd>" + secs(resp.atUs) + " " + esc(resp.text) + "</dd>" : "") +
    "<dt>responses</dt><dd>" + w.responses.map((q) => (q.bad ? "<b style=color:#d50000>" : "") + secs(q.atUs) + " " + esc(q.text) + (q.bad ? "</b>" : "")).join("<br>") + "</dd></dl>";
}
function focus(us, spanUs) { t0 = Math.max(0, us - spanUs / 2); t1 = t0 + spanUs; draw(); cv.scrollIntoView({block:"nearest"}); }
cv.addEventListener("mousemove", (e) => {
  if (drag) return;
  const b = cv.getBoundingClientRect(), h = hit(e.clientX - b.left, e.clientY - b.top);
  if (!h) { tip.style.display = "none"; return; }
  tip.textContent = short(h); tip.style.display = "block";
  tip.style.left = Math.min(e.clientX - b.left + 12, width - 300) + "px"; tip.style.top = (e.clientY - b.top + 14) + "px";
});
cv.addEventListener("mouseleave", () => { tip.style.display = "none"; });
let drag = null;
cv.addEventListener("mousedown", (e) => { drag = {x:e.clientX, t0, t1, moved:false}; cv.style.cursor = "grabbing"; });
window.addEventListener("mouseup", (e) => {
  if (!drag) return;
  const d = drag; drag = null; cv.style.cursor = "grab";
  if (d.moved) return;
  const b = cv.getBoundingClientRect(), h = hit(e.clientX - b.left, e.clientY - b.top);
  if (h && h.op) showOp(h.op); else if (h && h.watch) showWatch(h.watch, h.resp);
});
window.addEventListener("mousemove", (e) => {
  if (!drag) return;
  const dx = e.clientX - drag.x; if (Math.abs(dx) > 2) drag.moved = true;
  const dt = (dx / (width - LABEL)) * (drag.t1 - drag.t0);
  t0 = drag.t0 - dt; t1 = drag.t1 - dt; draw();
});
cv.addEventListener("wheel", (e) => {
  e.preventDefault();
  const b = cv.getBoundingClientRect(), at = usOf(Math.max(LABEL, e.clientX - b.left));
  const k = Math.exp(e.deltaY * 0.002), span = Math.max(100, (t1 - t0) * k);
  t0 = at - ((at - t0) / (t1 - t0)) * span; t1 = t0 + span; draw();
}, {passive:false});
document.getElementById("reset").onclick = () => { t0 = 0; t1 = Math.max(1, D.endUs); draw(); };
document.getElementById("zoom-in").onclick = () => { const m = (t0 + t1) / 2, s = (t1 - t0) / 4; t0 = m - s; t1 = m + s; draw(); };
document.getElementById("zoom-out").onclick = () => { const m = (t0 + t1) / 2, s = t1 - t0; t0 = m - s; t1 = m + s; draw(); };
const byId = new Map(D.ops.map((o) => [o.id, o]));
const watchById = new Map(D.watches.map((w) => [w.id, w]));
for (const a of document.querySelectorAll("a.bad-op")) a.onclick = () => {
  const o = byId.get(Number(a.dataset.op)); if (!o) return;
  focus(o.callUs, Math.max(200000, 4 * ((o.returnUs ?? o.callUs + 1e6) - o.callUs))); showOp(o);
};
for (const a of document.querySelectorAll("a.bad-watch")) a.onclick = () => {
  const w = watchById.get(Number(a.dataset.watch)); if (!w) return;
  const bad = w.responses.find((q) => q.bad); if (bad) focus(bad.atUs, 2e6); showWatch(w, bad);
};
for (const a of document.querySelectorAll("a.goto")) a.onclick = () => focus(Number(a.dataset.at), 4e6);
window.addEventListener("resize", resize);
resize();
`;

function violationHtml(d: ReportData): string {
  if (d.violations.length === 0)
    return d.verdict === "unknown"
      ? `<div id="banner"><h2>No verdict</h2>the linearizability check ran out of budget before deciding</div>`
      : "";
  const ops = new Map(d.ops.map((o) => [o.id, o]));
  const items = d.violations.slice(0, 20).map((v) => {
    const opLinks = v.operations
      .filter((id) => ops.has(id))
      .slice(0, 30)
      .map((id) => `<a class="bad-op" data-op="${id}">operation ${id}</a>`)
      .join("");
    const watchLinks = v.watches
      .slice(0, 10)
      .map((id) => `<a class="bad-watch" data-watch="${id}">watch ${id}</a>`)
      .join("");
    const at =
      v.atUs === null ? "" : `<a class="goto" data-at="${v.atUs}">at ${(v.atUs / 1e6).toFixed(3)}s</a>`;
    return `<div class="violation" data-checker="${escapeHtml(v.checker)}"><pre>${escapeHtml(v.explanation.join("\n"))}</pre>${at}${opLinks}${watchLinks}</div>`;
  });
  const more = d.violations.length > 20 ? `<div>(${d.violations.length - 20} more)</div>` : "";
  const stuck = d.ops.filter((o) => o.bad && !d.violations.some((v) => v.operations.includes(o.id)));
  const stuckLinks = stuck.length
    ? `<div>also marked: ${stuck
        .slice(0, 30)
        .map((o) => `<a class="bad-op" data-op="${o.id}">operation ${o.id}</a>`)
        .join("")}</div>`
    : "";
  return `<div id="banner"><h2>Violation: ${escapeHtml([...new Set(d.violations.map((v) => v.checker))].join(", "))}</h2>${items.join("")}${more}${stuckLinks}</div>`;
}

/** The report page for a run. */
export function renderReport(d: ReportData): string {
  const title = `etcd-dst seed ${d.seed} (${d.profile}${d.bugs.length ? `, bugs: ${d.bugs.join(", ")}` : ""}): ${d.verdict}`;
  const legend = [
    ["leader", "#2e7d32"],
    ["follower", "#90caf9"],
    ["candidate", "#ffb74d"],
    ["down", "#9e9e9e"],
    ["fault", "#ef9a9a"],
    ["ok", "#5c9ded"],
    ["error", "#b39ddb"],
    ["unknown outcome", "#f0c36d"],
    ["not placeable / violating", "#d50000"],
    ["watch events", "#1565c0"],
    ...(d.members.some((m) => m.marks.some((k) => k.kind === "validation"))
      ? [
          ["validation", "#00897b"],
          ["restore", "#ef6c00"],
          ["backup upload", "#1e88e5"],
        ]
      : []),
  ]
    .map(([n, c]) => `<span style="background:${c}"></span>${n}`)
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head>
<body>
<header><h1 class="verdict-${escapeHtml(d.verdict)}">${escapeHtml(title)}</h1><pre>${escapeHtml(
    d.summary
      .split("\n")
      .filter((l, i) => i === 1 || l.trimStart().startsWith("reproduce:"))
      .map((l) => l.trim())
      .join("\n"),
  )}</pre>
<div>trace hash ${escapeHtml(d.traceHash)}; ${d.ops.length} operations, ${d.watches.length} watches, ${d.faults.length} fault windows</div></header>
${violationHtml(d)}
<div id="toolbar"><button id="zoom-in">zoom in</button><button id="zoom-out">zoom out</button><button id="reset">whole run</button>
<span>wheel: zoom, drag: pan, click: details</span><span class="legend">${legend}</span></div>
<div id="wrap"><canvas id="timeline"></canvas><div id="tip"></div></div>
<div id="details">Click an operation or a watch for its details.</div>
<script type="application/json" id="report-data">${inlineJson(d)}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}

/** The report page of a finished run (`file`: the scenario file it was saved as, if any). */
export function reportHtml(r: RunResult, file: string | null): string {
  return renderReport(buildReport(r, humanSummary(r, file)));
}
