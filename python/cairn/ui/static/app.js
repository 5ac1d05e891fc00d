// cairn ui: a small single-page app over the JSON API in cairn/ui/api.py.
// Routes: #/ (runs), #/run/FLOW/ID[/STEP], #/task/FLOW/ID/TASK. No dependencies.
"use strict";

const main = () => document.getElementById("main");
const show = (...parts) => main().replaceChildren(...parts.filter((p) => p !== null && p !== undefined));
let timer = null;      // the poll of the page being shown
let generation = 0;    // bumps on navigation, so stale answers are dropped

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick" || k === "onchange" || k === "oninput") e[k] = v;
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

async function api(path) {
  const r = await fetch(path, {headers: {Accept: "application/json"}});
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

const enc = encodeURIComponent;
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");
function dur(s) {
  if (s === null || s === undefined) return "";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}
// As the client and the cards show sizes: binary units.
function size(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}
const badge = (s) => el("span", {class: `status ${s}`, "data-status": s}, s);

function crumbs(...parts) {
  const c = document.getElementById("crumbs");
  c.replaceChildren(...parts.flatMap((p) => [" / ", p]));
}
function setLive(on) { document.getElementById("live").textContent = on ? "● live" : ""; }
function poll(fn, ms) { clearInterval(timer); timer = setInterval(fn, ms); }
function stop() { clearInterval(timer); timer = null; setLive(false); }
function fail(e) { show(el("div", {class: "cairn-error", id: "error"}, String(e.message || e))); }

function pager(state, total, onmove) {
  const from = total ? state.offset + 1 : 0, to = Math.min(total, state.offset + state.limit);
  return el("div", {class: "pager"},
    el("button", {disabled: state.offset === 0, onclick: () => onmove(Math.max(0, state.offset - state.limit))}, "‹ Newer"),
    el("span", {class: "muted", "data-testid": "page-info"}, `${from}–${to} of ${total}`),
    el("button", {disabled: to >= total, onclick: () => onmove(state.offset + state.limit)}, "Older ›"));
}

// ---- runs ------------------------------------------------------------------

const runsState = {flow: "", status: "", tag: "", user: "", offset: 0, limit: 50};

async function showRuns(gen) {
  crumbs();
  const q = new URLSearchParams(Object.entries(runsState).filter(([, v]) => v !== "")).toString();
  const data = await api(`/api/runs?${q}`);
  if (gen !== generation) return;
  const input = (key, label) => el("input", {placeholder: label, value: runsState[key], "data-filter": key,
    onchange: (e) => { runsState[key] = e.target.value.trim(); runsState.offset = 0; route(); }});
  const select = (key, options) => {
    const s = el("select", {"data-filter": key, onchange: (e) => { runsState[key] = e.target.value; runsState.offset = 0; route(); }},
      options.map(([v, label]) => el("option", {value: v, selected: v === runsState[key]}, label)));
    return s;
  };
  const rows = data.runs.map((r) => el("tr", {class: "clickable", "data-run": `${r.flow}/${r.run_id}`,
      onclick: () => { location.hash = `#/run/${enc(r.flow)}/${r.run_id}`; }},
    el("td", {}, el("a", {href: `#/run/${enc(r.flow)}/${r.run_id}`}, `${r.flow}/${r.run_id}`)),
    el("td", {}, badge(r.status)), el("td", {}, r.user),
    el("td", {}, r.tags.map((t) => el("span", {class: "tag"}, t))),
    el("td", {}, when(r.created_at)), el("td", {}, dur(r.duration))));
  show(
    el("h1", {}, "Runs"),
    el("div", {class: "filters"},
      select("flow", [["", "all flows"], ...data.flows.map((f) => [f, f])]),
      select("status", [["", "any status"], ["running", "running"], ["succeeded", "succeeded"], ["failed", "failed"]]),
      input("tag", "tag"), input("user", "user")),
    el("table", {id: "runs"}, el("thead", {}, el("tr", {}, ["run", "status", "user", "tags", "started", "duration"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)),
    pager(runsState, data.total, (o) => { runsState.offset = o; route(); }));
  const anyRunning = data.runs.some((r) => r.status === "running");
  setLive(anyRunning);
  poll(() => showRuns(gen).catch(fail), anyRunning ? 1000 : 5000);
}

// ---- a run -----------------------------------------------------------------

const stepState = {step: null, sort: "id", order: "asc", status: "", offset: 0, limit: 50};

function drawTimeline(run) {
  const box = el("div", {class: "timeline", id: "timeline"});
  const items = run.timeline;
  if (!items.length) return el("p", {class: "muted"}, "No tasks yet.");
  const t0 = Math.min(...items.map((i) => i.start || run.now));
  const t1 = Math.max(...items.map((i) => i.end || run.now), t0 + 1e-3);
  for (const i of items) {
    const bar = el("div", {class: `tl-bar ${i.status}${i.attempts > 1 ? " retried" : ""}`,
      title: `${i.step}/${i.task_id} ${i.status}, ${dur((i.end || run.now) - i.start)}${i.attempts > 1 ? `, ${i.attempts} attempts` : ""}`,
      "data-task": i.task_id});
    bar.style.left = `${((i.start - t0) / (t1 - t0)) * 100}%`;
    bar.style.width = `${Math.max(0.2, (((i.end || run.now) - i.start) / (t1 - t0)) * 100)}%`;
    bar.onclick = () => { location.hash = `#/task/${enc(run.flow)}/${run.run_id}/${i.task_id}`; };
    box.append(el("div", {class: "tl-row"}, el("span", {class: "tl-label"}, `${i.step}/${i.task_id}`), bar));
  }
  const note = run.timeline_total > items.length ? el("p", {class: "muted"}, `The first ${items.length} of ${run.timeline_total} tasks.`) : null;
  return el("div", {}, box, note);
}

function paintGraph(holder, run, selected) {
  for (const g of holder.querySelectorAll("g.cairn-step")) {
    const s = run.steps.find((x) => x.name === g.dataset.step);
    if (!s) continue;
    g.setAttribute("class", `cairn-step state-${s.state}${s.name === selected ? " selected" : ""}`);
    g.setAttribute("data-state", s.state);
    const sub = g.querySelector(".cairn-step-sub");
    const parts = [`${s.succeeded}/${s.total} ✓`];
    if (s.failed) parts.push(`${s.failed} ✗`);
    if (s.running) parts.push(`${s.running} running`);
    if (sub) sub.textContent = s.total ? parts.join(" · ") : "pending";
    g.onclick = () => { location.hash = `#/run/${enc(run.flow)}/${run.run_id}/${enc(s.name)}`; };
  }
}

async function stepTable(run, step, gen) {
  const q = new URLSearchParams(Object.entries(stepState).filter(([k, v]) => v !== "" && k !== "step")).toString();
  const data = await api(`/api/runs/${enc(run.flow)}/${run.run_id}/steps/${enc(step)}/tasks?${q}`);
  if (gen !== generation) return null;
  const change = (key) => (e) => { stepState[key] = e.target.value; stepState.offset = 0; route(); };
  const opt = (key, pairs) => el("select", {"data-control": key, onchange: change(key)},
    pairs.map(([v, l]) => el("option", {value: v, selected: stepState[key] === v}, l)));
  return el("div", {class: "panel", id: "step-tasks"},
    el("h2", {}, `Tasks of ${step}`),
    el("div", {class: "filters"},
      opt("sort", [["id", "by id"], ["duration", "by duration"], ["start", "by start"]]),
      opt("order", [["asc", "ascending"], ["desc", "descending"]]),
      opt("status", [["", "any status"], ["succeeded", "succeeded"], ["failed", "failed"], ["running", "running"]])),
    el("table", {}, el("thead", {}, el("tr", {}, ["task", "status", "foreach index", "started", "duration", "attempts"].map((h) => el("th", {}, h)))),
      el("tbody", {}, data.tasks.map((t) => el("tr", {class: "clickable", "data-task": t.task_id,
          onclick: () => { location.hash = `#/task/${enc(run.flow)}/${run.run_id}/${t.task_id}`; }},
        el("td", {}, el("a", {href: `#/task/${enc(run.flow)}/${run.run_id}/${t.task_id}`}, `${step}/${t.task_id}`)),
        el("td", {}, badge(t.status)), el("td", {}, t.foreach_index >= 0 ? t.foreach_index : ""),
        el("td", {}, when(t.started_at)), el("td", {}, dur(t.duration)), el("td", {}, t.attempts))))),
    pager(stepState, data.total, (o) => { stepState.offset = o; route(); }));
}

async function showRun(flow, runId, step, gen) {
  const run = await api(`/api/runs/${enc(flow)}/${runId}`);
  if (gen !== generation) return;
  crumbs(el("a", {href: "#/"}, "runs"), el("a", {href: `#/run/${enc(flow)}/${runId}`}, `${flow}/${runId}`));
  // Without a step in the address: the running step, else a failed one, else the widest.
  const widest = [...run.steps].sort((a, b) => b.total - a.total)[0];
  const selected = step || (run.steps.find((s) => s.running) || run.steps.find((s) => s.failed) || widest || {}).name;
  if (stepState.step !== selected) Object.assign(stepState, {step: selected, status: "", offset: 0});
  const graph = el("div", {id: "graph"});
  graph.innerHTML = run.graph_svg;  // made by the server from the run's own GraphSpec, text escaped
  paintGraph(graph, run, selected);
  const params = Object.entries(run.params);
  const tasks = selected ? await stepTable(run, selected, gen) : null;
  if (gen !== generation) return;
  show(
    el("h1", {}, `${run.flow}/${run.run_id} `, badge(run.status)),
    el("p", {class: "muted", id: "run-meta"}, `by ${run.user}, started ${when(run.created_at)}, ${run.status === "running" ? "running for" : "took"} ${dur(run.duration)} · ${run.task_count} tasks recorded`,
      run.origin_run_id ? ` · resumed from run ${run.origin_run_id}` : ""),
    el("div", {}, [...run.tags, ...run.system_tags].map((t) => el("span", {class: "tag"}, t))),
    el("div", {class: "cols"},
      el("div", {class: "panel"}, el("h2", {}, "Graph"), graph),
      el("div", {class: "panel"}, el("h2", {}, "Parameters"),
        params.length ? el("table", {id: "params"}, params.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, JSON.stringify(v)))))
          : el("p", {class: "muted"}, "none"))),
    el("div", {class: "panel"}, el("h2", {}, "Timeline"), drawTimeline(run)),
    tasks);
  setLive(run.status === "running");
  if (run.status === "running") poll(() => showRun(flow, runId, step, gen).catch(fail), 500);
  else stop();
}

// ---- a task ----------------------------------------------------------------

const logState = {stream: "out", attempt: null, offset: -1, text: ""};

async function tailLog(t, pre, gen) {
  const q = new URLSearchParams({stream: logState.stream, offset: String(logState.offset)});
  if (logState.attempt !== null) q.set("attempt", logState.attempt);
  const log = await api(`/api/runs/${enc(t.flow)}/${t.run_id}/tasks/${t.task_id}/log?${q}`);
  if (gen !== generation) return log;
  if (logState.offset < 0 || log.offset < logState.offset) logState.text = "";
  logState.text += log.text;
  logState.offset = log.offset;
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = logState.text || "(empty)";
  if (atEnd) pre.scrollTop = pre.scrollHeight;
  return log;
}

async function showTask(flow, runId, taskId, gen) {
  const t = await api(`/api/runs/${enc(flow)}/${runId}/tasks/${taskId}`);
  if (gen !== generation) return;
  crumbs(el("a", {href: "#/"}, "runs"), el("a", {href: `#/run/${enc(flow)}/${runId}`}, `${flow}/${runId}`),
    el("a", {href: `#/run/${enc(flow)}/${runId}/${enc(t.step)}`}, t.step), String(t.task_id));
  const pre = el("pre", {id: "log"}, "");
  const tabs = el("div", {class: "tabs filters"});
  const attemptSel = el("select", {"data-control": "attempt", onchange: (e) => { logState.attempt = e.target.value; logState.offset = -1; tailLog(t, pre, gen); }},
    t.attempts.map((a) => el("option", {value: a.attempt, selected: a.attempt === t.attempts[t.attempts.length - 1].attempt}, `attempt ${a.attempt}`)));
  for (const s of ["out", "err"]) {
    tabs.append(el("button", {class: s === logState.stream ? "active" : "", "data-stream": s,
      onclick: () => { logState.stream = s; logState.offset = -1; for (const b of tabs.querySelectorAll("button")) b.className = b.dataset.stream === s ? "active" : ""; tailLog(t, pre, gen); }},
      s === "out" ? "stdout" : "stderr"));
  }
  tabs.append(attemptSel);
  const artifacts = t.artifacts.map((a) => {
    const body = el("div", {class: "preview"});
    const d = el("details", {class: "artifact", "data-artifact": a.name}, el("summary", {}, el("strong", {}, a.name), el("span", {class: "muted"}, `  ${a.type} · ${size(a.size)}`)), body);
    d.addEventListener("toggle", async () => {
      if (!d.open || body.dataset.loaded) return;
      const r = await fetch(`/api/runs/${enc(flow)}/${runId}/tasks/${taskId}/artifacts/${enc(a.name)}`);
      body.innerHTML = await r.text();  // made by cairn.cards.preview: every value escaped
      body.dataset.loaded = "1";
    });
    return d;
  });
  const cards = t.cards.map((c) => el("div", {class: "panel"},
    el("h2", {}, `Card: ${c.id || c.type}`, " ", el("a", {href: c.url, target: "_blank", rel: "noopener"}, "open")),
    // No allow-same-origin: a card's script gets an opaque origin, so it cannot reach this page or the API.
    el("iframe", {class: "card", sandbox: "allow-scripts", src: c.url, title: `card ${c.id || c.type}`, "data-card": c.index})));
  show(
    el("h1", {}, `${t.pathspec} `, badge(t.status)),
    el("p", {class: "muted"}, t.finished_at ? `${when(t.started_at)}, took ${dur(t.finished_at - t.started_at)}` : `started ${when(t.started_at)}`,
      t.origin ? ` · cloned from ${t.origin}` : ""),
    t.exception ? el("div", {class: "cairn-error", id: "exception"}, el("strong", {}, `${t.exception.type}: ${t.exception.message}`), el("pre", {}, t.exception.traceback || "")) : null,
    el("div", {class: "panel"}, el("h2", {}, "Attempts"),
      el("table", {id: "attempts"}, el("thead", {}, el("tr", {}, ["attempt", "status", "exit", "reason", "started", "duration"].map((h) => el("th", {}, h)))),
        el("tbody", {}, t.attempts.map((a) => el("tr", {}, el("td", {}, a.attempt), el("td", {}, badge(a.status)),
          el("td", {}, a.signal ? `signal ${a.signal}` : (a.exit_code ?? "")), el("td", {}, a.reason || ""),
          el("td", {}, when(a.started_at)), el("td", {}, a.finished_at ? dur(a.finished_at - a.started_at) : "")))))),
    el("div", {class: "panel"}, el("h2", {}, "Logs"), tabs, pre),
    el("div", {class: "panel", id: "artifacts"}, el("h2", {}, `Artifacts (${t.artifacts.length})`), artifacts.length ? artifacts : el("p", {class: "muted"}, "none")),
    ...cards);
  logState.offset = -1; logState.text = ""; logState.attempt = null;
  await tailLog(t, pre, gen);
  if (t.status === "running") {
    setLive(true);
    poll(async () => {
      const log = await tailLog(t, pre, gen);
      if (!log.running && gen === generation) showTask(flow, runId, taskId, gen).catch(fail);
    }, 500);
  } else stop();
}

// ---- routing ---------------------------------------------------------------

function route() {
  generation += 1;
  const gen = generation;
  stop();
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let p;
  if (parts[0] === "run" && parts.length >= 3) p = showRun(parts[1], parts[2], parts[3], gen);
  else if (parts[0] === "task" && parts.length >= 4) p = showTask(parts[1], parts[2], parts[3], gen);
  else p = showRuns(gen);
  p.catch(fail);
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);
