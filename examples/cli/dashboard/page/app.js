// The dashboard's page: polls the server's JSON API, draws the learning curves as SVG, and sends
// every action as a POST with the access token in a header.
"use strict";

const token = document.querySelector('meta[name="ssmrl-token"]').content;
const $ = (id) => document.getElementById(id);
let state = null;      // the last /api/state
let openRun = null;    // the run shown in the run view
let openRsi = null;    // the self-improvement run shown
let plotChoice = {};   // config name -> the columns chosen for its plot

async function api(method, path, body) {
  const init = { method, headers: { [method === "POST" ? "X-Ssmrl-Token" : "Accept"]: method === "POST" ? token : "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const reply = await response.json().catch(() => ({ error: "the server sent no JSON (" + response.status + ")" }));
  if (!response.ok) throw new Error(reply.error || "HTTP " + response.status);
  return reply;
}

function say(id, text, error) {
  const p = $(id);
  p.textContent = text;
  p.className = "message" + (error ? " error" : text ? " ok" : "");
}

function element(tag, text, attributes) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  for (const [k, v] of Object.entries(attributes || {})) e.setAttribute(k, v);
  return e;
}

function row(cells, tag) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? wrap(c, tag) : element(tag || "td", c));
  return tr;
}
function wrap(node, tag) {
  const td = document.createElement(tag || "td");
  td.appendChild(node);
  return td;
}

// ---- CSV (train.csv, knobs_audit.csv) ----

function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; ++i) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; ++i; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n") { row.push(cell); rows.push(row); row = []; cell = ""; }
    else if (c !== "\r") cell += c;
  }
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

// ---- the plot ----

const colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

function unitOf(column) {
  if (/return/.test(column) || column === "post_adaptation_std") return "return per episode (sum of rewards)";
  if (/kl$/.test(column)) return "KL divergence (nats)";
  if (/entropy/.test(column)) return "entropy (nats)";
  if (column === "seconds") return "time per iteration (s)";
  if (column === "episode_length") return "episode length (steps)";
  if (column === "env_steps") return "environment steps";
  if (column.startsWith("knob.")) return "knob value";
  if (column.startsWith("mc_share.")) return "share of MC choices";
  return column.replace(/_/g, " ");
}

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
  const raw = (hi - lo) / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

function svgElement(tag, attributes, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawPlot(svg, header, rows, columns, overrides) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = 900, H = 360, left = 70, right = 200, top = 20, bottom = 50;
  const xIndex = 0, xName = header[0];
  const series = columns.map((c) => ({ name: c, index: header.indexOf(c) })).filter((s) => s.index >= 0);
  const points = [];
  for (const s of series) {
    s.points = rows.map((r) => [Number(r[xIndex]), Number(r[s.index])]).filter((p) => isFinite(p[0]) && isFinite(p[1]));
    points.push(...s.points);
  }
  svg.setAttribute("data-points", String(series.length ? series[0].points.length : 0));
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  let x0 = xs.length ? Math.min(...xs) : 0, x1 = xs.length ? Math.max(...xs) : 1;
  let y0 = ys.length ? Math.min(...ys) : 0, y1 = ys.length ? Math.max(...ys) : 1;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) { y0 -= 1; y1 += 1; }
  const xt = niceTicks(x0, x1, 8), yt = niceTicks(y0, y1, 6);
  x0 = Math.min(x0, xt[0]); x1 = Math.max(x1, xt[xt.length - 1]);
  y0 = Math.min(y0, yt[0]); y1 = Math.max(y1, yt[yt.length - 1]);
  const X = (x) => left + (x - x0) / (x1 - x0) * (W - left - right);
  const Y = (y) => H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom);
  svg.appendChild(svgElement("rect", { x: left, y: top, width: W - left - right, height: H - top - bottom, fill: "#fff", stroke: "#888" }));
  for (const t of xt) {
    svg.appendChild(svgElement("line", { x1: X(t), x2: X(t), y1: top, y2: H - bottom, stroke: "#eee" }));
    svg.appendChild(svgElement("text", { x: X(t), y: H - bottom + 16, "text-anchor": "middle", "font-size": 11 }, String(t)));
  }
  for (const t of yt) {
    svg.appendChild(svgElement("line", { x1: left, x2: W - right, y1: Y(t), y2: Y(t), stroke: "#eee" }));
    svg.appendChild(svgElement("text", { x: left - 6, y: Y(t) + 4, "text-anchor": "end", "font-size": 11 }, String(t)));
  }
  const xLabel = xName === "iteration" ? "meta-iteration" : xName === "update" ? "update" : xName;
  svg.appendChild(svgElement("text", { x: (left + W - right) / 2, y: H - 12, "text-anchor": "middle", "font-size": 13 }, xLabel));
  const units = [...new Set(series.map((s) => unitOf(s.name)))];
  svg.appendChild(svgElement("text", { x: 16, y: (top + H - bottom) / 2, "text-anchor": "middle", "font-size": 13,
    transform: `rotate(-90 16 ${(top + H - bottom) / 2})` }, units.length === 1 ? units[0] : "value"));
  for (const o of overrides) {
    if (o >= x0 && o <= x1) {
      svg.appendChild(svgElement("line", { x1: X(o), x2: X(o), y1: top, y2: H - bottom, stroke: "#999", "stroke-dasharray": "4 3", class: "override-mark" }));
    }
  }
  series.forEach((s, k) => {
    const colour = colours[k % colours.length];
    if (s.points.length) {
      svg.appendChild(svgElement("polyline", { points: s.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(" "),
        fill: "none", stroke: colour, "stroke-width": 1.6, class: "series", "data-column": s.name }));
    }
    const ly = top + 14 + 18 * k;
    svg.appendChild(svgElement("line", { x1: W - right + 12, x2: W - right + 32, y1: ly - 4, y2: ly - 4, stroke: colour, "stroke-width": 2 }));
    svg.appendChild(svgElement("text", { x: W - right + 38, y: ly, "font-size": 11 }, s.name));
  });
  if (overrides.length) {
    const ly = top + 14 + 18 * series.length;
    svg.appendChild(svgElement("line", { x1: W - right + 12, x2: W - right + 32, y1: ly - 4, y2: ly - 4, stroke: "#999", "stroke-dasharray": "4 3" }));
    svg.appendChild(svgElement("text", { x: W - right + 38, y: ly, "font-size": 11 }, "override applied"));
  }
}

function defaultColumns(header) {
  const wanted = header.filter((c) => /(pre_adaptation_return|post_adaptation_return|mean_return_last_100)$/.test(c));
  return wanted.length ? wanted : header.slice(1, 2);
}

// ---- the runs and the job ----

function configOf(name) { return state && state.configs.find((c) => c.name === name); }

function renderState() {
  $("served-dir").textContent = state.dir;
  const job = state.job;
  const badge = $("job-status");
  if (job && job.running) {
    badge.textContent = (job.stopping ? "stopping " : "training ") + job.name;
    badge.className = "badge running";
  } else if (job) {
    badge.textContent = `run ${job.name} ended (exit status ${job.status})`;
    badge.className = "badge";
  } else {
    badge.textContent = "no training run";
    badge.className = "badge";
  }
  const tbody = $("runs").querySelector("tbody");
  tbody.replaceChildren();
  for (const r of state.runs) {
    const open = element("button", "open", { type: "button", class: "run-open", "data-run": r.name });
    open.addEventListener("click", () => (r.kind === "rsi" ? showRsi(r.name) : showRun(r.name)));
    tbody.appendChild(row([r.name + (r.training ? " (training)" : ""), r.kind, r.config || "?", r.iteration || "",
      r.checkpoints.join(", "), open]));
  }
  $("pretrained").replaceChildren(...state.pretrained.map((p) => element("li", `${p.file} (${p.config})`)));
  const select = $("adapt-checkpoint"), chosen = select.value;
  const options = [];
  for (const r of state.runs) for (const f of r.checkpoints) options.push([JSON.stringify({ run: r.name, file: f }), `${r.name}/${f}`]);
  for (const p of state.pretrained) options.push([JSON.stringify({ pretrained: p.file }), `shipped: ${p.file}`]);
  select.replaceChildren(...options.map(([v, t]) => element("option", t, { value: v })));
  if (options.some(([v]) => v === chosen)) select.value = chosen;
}

function fillTrainForm() {
  const select = $("train-config");
  select.replaceChildren(...state.configs.map((c) => element("option", c.name, { value: c.name })));
  select.addEventListener("change", knobFields);
  knobFields();
}

function knobFields() {
  const c = configOf($("train-config").value);
  $("train-summary").textContent = `${c.summary}; ${c.outer_steps} ${c.meta ? "meta-iterations" : "updates at most"}`;
  $("train-tasks-label").hidden = !c.meta;
  const box = $("train-knobs");
  box.replaceChildren();
  for (const k of c.knobs) {
    const label = element("label", null, { title: k.description });
    label.appendChild(document.createTextNode(`${k.name} `));
    let input;
    if (k.choices || k.type === "bool") {
      input = element("select");
      input.appendChild(element("option", `configured (${k.default})`, { value: "" }));
      for (const v of k.choices || ["false", "true"]) input.appendChild(element("option", v, { value: v }));
    } else {
      input = element("input", null, { placeholder: `${k.default}`, inputmode: "decimal" });
    }
    input.name = "knob." + k.name;
    label.appendChild(input);
    label.appendChild(element("small", `${k.type} ${k.range}`));
    box.appendChild(label);
  }
}

async function startTraining(event) {
  event.preventDefault();
  const knobs = {};
  for (const input of $("train-knobs").querySelectorAll("[name^='knob.']")) {
    if (input.value.trim() !== "") knobs[input.name.slice(5)] = input.value.trim();
  }
  const c = configOf($("train-config").value);
  const body = { config: c.name, name: $("train-name").value.trim(), seed: $("train-seed").value.trim(),
    outer_steps: $("train-steps").value.trim(), knobs };
  if (c.meta) body.tasks_per_batch = $("train-tasks").value.trim();
  try {
    await api("POST", "/api/train", body);
    say("train-message", `started run ${body.name}`);
    await refresh();
    showRun(body.name);
  } catch (e) {
    say("train-message", e.message, true);
  }
}

async function stopTraining() {
  try {
    const reply = await api("POST", "/api/stop", {});
    say("train-message", `stopping ${reply.stopping} after its current iteration`);
  } catch (e) {
    say("train-message", e.message, true);
  }
}

async function showRun(name) {
  openRun = name;
  $("run-view").hidden = false;
  $("run-title").textContent = name;
  await refreshRun();
}

async function refreshRun() {
  if (!openRun) return;
  let run;
  try {
    run = await api("GET", "/api/run?name=" + encodeURIComponent(openRun));
  } catch (e) {
    $("run-meta").textContent = e.message;
    return;
  }
  const m = run.metadata || {};
  $("run-meta").textContent = `config ${run.config || "?"}` + (m["ssmrl.seed"] ? `, seed ${m["ssmrl.seed"]}` : "") +
    (m["ssmrl.iteration"] ? `, latest checkpoint at iteration ${m["ssmrl.iteration"]}` : ", no checkpoint yet") +
    (run.checkpoints && run.checkpoints.length ? ` (${run.checkpoints.join(", ")})` : "");
  const rows = parseCsv(run.csv || "");
  const header = rows.length ? rows[0] : [];
  const body = rows.slice(1).filter((r) => r.length === header.length);
  const audit = parseCsv(run.audit || "").slice(1).filter((r) => r.length >= 4);
  const last = body.length ? body[body.length - 1] : null;
  $("run-knobs").textContent = last ? "knobs in effect: " + header.map((c, i) => [c, last[i]])
    .filter(([c]) => c.startsWith("knob.")).map(([c, v]) => `${c.slice(5)} ${v !== "" && isFinite(v) ? Number(v) : v}`)
    .join(", ") : "";
  const chosen = plotChoice[run.config] || defaultColumns(header);
  const box = $("plot-columns");
  if (box.dataset.header !== header.join(",")) {
    box.dataset.header = header.join(",");
    box.replaceChildren();
    for (const c of header.slice(1)) {
      const label = element("label", null, { class: "column-choice" });
      const check = element("input", null, { type: "checkbox", value: c });
      check.checked = chosen.includes(c);
      check.addEventListener("change", () => {
        plotChoice[run.config] = [...box.querySelectorAll("input:checked")].map((i) => i.value);
        refreshRun();
      });
      label.appendChild(check);
      label.appendChild(document.createTextNode(c));
      box.appendChild(label);
    }
  }
  const overrides = [...new Set(audit.filter((r) => r[3] === "override").map((r) => Number(r[0])))];
  drawPlot($("run-plot"), header, body, chosen, overrides);
  const tbody = $("audit-table").querySelector("tbody");
  tbody.replaceChildren(...audit.slice(-200).reverse().map((r) => row(r.slice(0, 4))));
  const job = run.job;
  $("job-output").textContent = job ? job.output : "";
  const text = $("override-text");
  const override = run.override || "";
  if (document.activeElement !== text && (text.dataset.shown || "") !== override) {
    text.value = override || "{}";
    text.dataset.shown = override;
  }
  const settings = $("run-settings").querySelector("tbody");
  settings.replaceChildren(...Object.entries(m).sort().map(([k, v]) => row([k, v])));
}

async function writeOverride() {
  try {
    await api("POST", "/api/override", { name: openRun, text: $("override-text").value });
    say("override-message", "override written; the run reads it before its next iteration");
  } catch (e) {
    say("override-message", e.message, true);
  }
}

async function removeOverride() {
  try {
    await api("POST", "/api/override/remove", { name: openRun });
    say("override-message", "override removed; the run goes back to its configured knobs");
  } catch (e) {
    say("override-message", e.message, true);
  }
}

// ---- adaptation ----

function fmt(x) { return typeof x === "number" ? (Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4)) : String(x); }

async function adapt() {
  const table = $("adapt-table");
  table.querySelector("thead").replaceChildren();
  table.querySelector("tbody").replaceChildren();
  let body;
  try {
    body = JSON.parse($("adapt-checkpoint").value || "{}");
  } catch (e) {
    body = {};
  }
  body.strategy = $("adapt-strategy").value;
  body.episodes = $("adapt-episodes").value.trim();
  body.adapt_steps = $("adapt-steps").value.trim();
  say("adapt-message", "adapting...");
  try {
    const r = await api("POST", "/api/adapt", body);
    const head = table.querySelector("thead"), rows = table.querySelector("tbody");
    if (r.returns) {
      head.appendChild(row(["adaptation steps", "mean return", "std of the return"], "th"));
      for (const x of r.returns) rows.appendChild(row([x.adaptation_steps, fmt(x.mean_return), fmt(x.std_return)]));
      say("adapt-message", `${r.config}, iteration ${r.iteration}: ${r.held_out_tasks} held-out tasks, ${r.episodes_per_task} episodes each`);
    } else if (r.strategies) {
      const names = Object.keys(r.strategies);
      head.appendChild(row(["episode", ...names.map((n) => `${n}: mean return (std)`)], "th"));
      const episodes = r.strategies[names[0]].episodes.length;
      for (let e = 0; e < episodes; ++e) {
        rows.appendChild(row([e + 1, ...names.map((n) => {
          const x = r.strategies[n].episodes[e];
          return `${fmt(x.mean_return)} (${fmt(x.std_return)})`;
        })]));
      }
      rows.appendChild(row(["rolled-back calls", ...names.map((n) => r.strategies[n].rolled_back_calls)]));
      say("adapt-message", `${r.config}, iteration ${r.iteration}: shift "${r.shift}", ${r.runs} runs`);
    } else {
      say("adapt-message", JSON.stringify(r));
    }
  } catch (e) {
    say("adapt-message", e.message, true);
  }
}

// ---- self-improvement ----

function proposalText(p) {
  if (!p) return "";
  if (p.kind === "knob") return `${p.knob} ${fmt(p.from)} → ${fmt(p.to)}`;
  return Object.entries(p).map(([k, v]) => (k === "kind" ? v : `${k} ${typeof v === "object" ? JSON.stringify(v) : fmt(v)}`)).join(", ");
}

async function showRsi(name) {
  openRsi = name;
  $("rsi-name").value = name;
  await refreshRsi();
}

async function refreshRsi() {
  if (!openRsi) return;
  try {
    const r = await api("GET", "/api/rsi?name=" + encodeURIComponent(openRsi));
    $("rsi-status").textContent = r.status;
    const tbody = $("rsi-history").querySelector("tbody");
    tbody.replaceChildren(...r.history.map((h) => {
      const e = h.eval || {};
      const score = (x) => (x && x.primary ? fmt(x.primary.iqm) : "");
      return row([h.cycle, proposalText(h.proposal), h.decision + (h.why ? `: ${h.why}` : ""),
        h.p_value === undefined ? "" : fmt(h.p_value), score(e.candidate), score(e.baseline || e), fmt(h.best)]);
    }));
  } catch (e) {
    $("rsi-status").textContent = e.message;
  }
}

async function rsiStart() {
  const name = $("rsi-name").value.trim();
  try {
    const r = await api("POST", "/api/rsi/start", { name, cycles: $("rsi-cycles").value.trim(),
      budget: $("rsi-budget").value.trim(), hidden: $("rsi-hidden").value.trim(),
      tasks_per_batch: $("rsi-tasks").value.trim(), replicates: $("rsi-replicates").value.trim(),
      eval_seeds: $("rsi-eval-seeds").value.trim(), heldout_seeds: $("rsi-eval-seeds").value.trim(), tasks_per_seed: "3" });
    say("rsi-message", r.output.trim());
    openRsi = name;
    await refresh();
  } catch (e) {
    say("rsi-message", e.message, true);
  }
}

async function rsiStop() {
  const name = $("rsi-name").value.trim();
  try {
    const r = await api("POST", "/api/rsi/stop", { name });
    say("rsi-message", r.output.trim());
    await refreshRsi();
  } catch (e) {
    say("rsi-message", e.message, true);
  }
}

// ---- polling ----

async function refresh() {
  try {
    state = await api("GET", "/api/state");
    renderState();
  } catch (e) {
    $("job-status").textContent = e.message;
  }
  await refreshRun();
}

let rsiTick = 0;
async function poll() {
  await refresh();
  if (++rsiTick % 3 === 0) await refreshRsi();
  setTimeout(poll, 1000);
}

async function start() {
  state = await api("GET", "/api/state");
  fillTrainForm();
  renderState();
  $("train-form").addEventListener("submit", startTraining);
  $("train-stop").addEventListener("click", stopTraining);
  $("override-apply").addEventListener("click", writeOverride);
  $("override-remove").addEventListener("click", removeOverride);
  $("adapt-run").addEventListener("click", adapt);
  $("rsi-start").addEventListener("click", rsiStart);
  $("rsi-stop").addEventListener("click", rsiStop);
  document.body.dataset.ready = "true";
  setTimeout(poll, 1000);
}

start().catch((e) => { document.body.prepend(element("p", "the dashboard could not start: " + e.message, { class: "message error" })); });
