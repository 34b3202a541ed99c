// A job's page, live: its event stream (EventSource on /ui/api/v1/jobs/{id}/events) draws the
// phases, the curves, what `auto` tried and the log; the job itself is polled for progress.
import { duration, el, fmt, setWidth } from "./dom.js";
import { LineChart } from "./linechart.js";

const root = document.getElementById("job");
const jobId = root.dataset.jobId;
const created = Date.parse(root.dataset.created);
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const HEADLINES = [
  ["val_macro_f1", "macro-F1", [0, 1]],
  ["val_accuracy", "accuracy", [0, 1]],
  ["val_rmse", "RMSE", null],
  ["val_r2", "R²", null],
  ["val_loss", "validation loss", null],
];
const BADGE = {
  ready: "ok", succeeded: "ok", running: "busy", queued: "wait", cancelling: "wait",
  failed: "bad", cancelled: "muted",
};

let status = root.dataset.status;
let headline = null;
let run = 0;
let lastEpoch = -1;
let events = 0;

const loss = new LineChart(document.getElementById("loss-chart"));
const metric = new LineChart(document.getElementById("metric-chart"));
const liveState = document.getElementById("live-state");
const log = document.getElementById("log");
const logBody = document.getElementById("events");

// ---- phases ----------------------------------------------------------------------------
const PHASES = [
  ["queued", "Queued"],
  ["started", "Worker started"],
  ["model_load", "Backbone loaded"],
  ["data_preparation", "Inputs prepared"],
  ["features", "Frozen features"],
  ["first_step", "Training"],
  ["registered", "Registered"],
];
const seen = new Map(); // phase -> {at (ms), seconds}
const timeline = document.getElementById("phases");

function drawPhases() {
  const items = [];
  const reached = PHASES.map(([key]) => seen.has(key));
  const lastDone = reached.lastIndexOf(true);
  const ended = TERMINAL.has(status) && status !== "succeeded";
  PHASES.forEach(([key, title], i) => {
    let label = title;
    let cls = "";
    const info = seen.get(key);
    if (info) cls = "done";
    else if (i < lastDone) cls = "done";
    if (key === "registered" && ended) {
      label = status === "failed" ? "Failed" : "Cancelled";
      cls = "failed";
    } else if (!TERMINAL.has(status) && i === lastDone + 1) cls = "active";
    const detail = [];
    if (info && Number.isFinite(info.at)) detail.push(`+${duration((info.at - created) / 1000)}`);
    if (info && Number.isFinite(info.seconds)) detail.push(`took ${duration(info.seconds)}`);
    if (!info && i < lastDone) detail.push("skipped");
    items.push(el("li", { class: cls, "data-phase": key }, el("b", {}, label), detail.join(" · ")));
  });
  timeline.replaceChildren(...items);
}

function notePhase(event) {
  const data = event.data || {};
  const at = Date.parse(event.created_at);
  if (event.message.startsWith("job created")) seen.set("queued", { at });
  if (Number.isFinite(data.attempt)) seen.set("started", { at });
  if (typeof data.phase === "string") seen.set(data.phase, { at, seconds: data.seconds });
  if (event.message.startsWith("registered model")) seen.set("registered", { at });
}

// ---- curves ----------------------------------------------------------------------------
function chooseHeadline(data) {
  if (headline) return;
  const found = HEADLINES.find(([key]) => typeof data[key] === "number");
  if (!found) return;
  headline = found;
  metric.fixed = found[2];
  document.getElementById("metric-name").textContent = found[1];
}

function noteMetrics(data) {
  if (!Number.isFinite(data.epoch)) return;
  chooseHeadline(data);
  const epoch = data.epoch;
  if (data.method === "linear_probe" || epoch === 0) {
    if (typeof data.val_loss === "number") loss.add("probe", "probe", "linear probe", 0, data.val_loss);
    if (headline && typeof data[headline[0]] === "number") {
      metric.add("probe", "probe", "linear probe", 0, data[headline[0]]);
    }
    return;
  }
  if (epoch < lastEpoch) run += 1; // a new fine-tuning run restarts at 1
  lastEpoch = epoch;
  const suffix = run ? ` (run ${run + 1})` : "";
  if (typeof data.train_loss === "number") {
    loss.add(`train${run}`, "train", `train loss${suffix}`, epoch, data.train_loss);
  }
  if (typeof data.val_loss === "number") {
    loss.add(`val${run}`, "val", `validation loss${suffix}`, epoch, data.val_loss);
  }
  if (headline && typeof data[headline[0]] === "number") {
    metric.add(`metric${run}`, "metric", `${headline[1]}${suffix}`, epoch, data[headline[0]]);
  }
}

// ---- what auto tried, and the plan -------------------------------------------------------
function noteCandidates(candidates) {
  const rows = candidates.map((c) => {
    const validation = Object.entries(c.validation || {})
      .filter(([k]) => k !== "weights_averaged")
      .map(([k, v]) => el("div", { class: "nowrap" }, `${k.replace("val_", "")} ${fmt(v, 4)}`));
    const badge = el("span", { class: `badge ${c.status === "kept" ? "ok" : "muted"}` }, c.status);
    return el(
      "tr",
      { "data-candidate": c.name },
      el("td", {}, el("strong", {}, c.name), el("div", { class: "muted small" }, c.description || "")),
      el("td", { class: "num" }, ...validation),
      el("td", { class: "num" }, duration(c.seconds)),
      el("td", {}, badge, c.reason ? el("div", { class: "muted small" }, c.reason) : null),
    );
  });
  document.getElementById("candidates").replaceChildren(...rows);
  for (const c of candidates) {
    const value = headline ? (c.validation || {})[headline[0]] : undefined;
    if (typeof value !== "number") continue;
    const kind = c.status === "kept" ? "kept" : "lost";
    metric.reference(`${c.name}${kind === "kept" ? " ✓ kept" : ""}`, value, kind);
  }
}

function notePlan(plan) {
  const items = (plan.candidates || []).map((c) =>
    el("li", {}, el("strong", {}, c.name), ` — ${c.description || ""} (about ${duration(c.estimated_seconds)})`),
  );
  const parts = [el("ol", {}, ...items)];
  if (plan.time_budget_seconds) {
    parts.push(el("p", { class: "small" }, `Fine-tuning time budget: ${duration(plan.time_budget_seconds)}.`));
  }
  const target = document.getElementById("plan");
  target.classList.remove("muted");
  target.replaceChildren(...parts);
  document.getElementById("plan-estimate").textContent =
    `about ${duration(plan.estimated_seconds)} on ${plan.device || "the workers"}`;
}

// ---- the log ---------------------------------------------------------------------------
function time(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour12: false });
}

function addLog(event) {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  logBody.append(
    el(
      "tr",
      { class: event.level, "data-event-id": event.id },
      el("td", { class: "t" }, time(event.created_at)),
      el("td", { class: "lvl" }, el("span", { class: `lvl-tag ${event.level}` }, event.level)),
      el("td", {}, event.message),
    ),
  );
  events += 1;
  document.getElementById("event-count").textContent = `${events} so far`;
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// ---- the stream ------------------------------------------------------------------------
let pending = false;
function redraw() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    loss.render();
    metric.render();
    drawPhases();
  });
}

function onEvent(message) {
  const event = JSON.parse(message.data);
  addLog(event);
  notePhase(event);
  const data = event.data || {};
  if (event.type === "metrics") noteMetrics(data);
  if (data.plan) notePlan(data.plan);
  if (Array.isArray(data.candidates)) noteCandidates(data.candidates);
  redraw();
}

const source = new EventSource(`/ui/api/v1/jobs/${encodeURIComponent(jobId)}/events`);
source.addEventListener("open", () => {
  liveState.textContent = TERMINAL.has(status) ? "replaying the event log" : "live";
});
source.addEventListener("message", onEvent);
source.addEventListener("metrics", onEvent);
source.addEventListener("end", (message) => {
  source.close();
  const end = JSON.parse(message.data);
  liveState.textContent = `finished: ${end.status}`;
  if (lastEpoch < 1 && metric.count) {
    // Only the probe's point: it is one fit on frozen features, scored out of fold.
    document.getElementById("metric-note").textContent =
      "No fine-tuning epochs: the linear probe is one fit on frozen features, scored out of fold (epoch 0).";
  }
  refresh();
});
source.addEventListener("unavailable", () => {
  liveState.textContent = "the database is unavailable; reconnecting…";
});
source.addEventListener("error", () => {
  if (source.readyState !== EventSource.CLOSED) liveState.textContent = "reconnecting…";
});

// ---- progress (the job row) ---------------------------------------------------------------
function showStatus(job) {
  status = job.status;
  root.dataset.status = status;
  const badge = el("span", { class: `badge ${BADGE[status] || "muted"}`, "data-status": status }, status);
  document.getElementById("job-status").replaceChildren(badge);
  const p = job.progress || {};
  const bar = document.querySelector("#job-progress > div");
  const track = document.getElementById("job-progress");
  if (status === "succeeded") {
    setWidth(bar, 100);
    track.classList.add("done");
  } else if (p.total_steps) setWidth(bar, (100 * p.step) / p.total_steps);
  document.getElementById("p-epoch").textContent = p.epochs ? `${p.epoch} / ${p.epochs}` : `${p.epoch ?? 0}`;
  document.getElementById("p-step").textContent = p.total_steps ? `${p.step} / ${p.total_steps}` : `${p.step ?? 0}`;
  document.getElementById("p-eta").textContent = TERMINAL.has(status) ? "—" : duration(p.eta_seconds);
  if (job.started_at) {
    const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    document.getElementById("p-elapsed").textContent = duration((end - Date.parse(job.started_at)) / 1000);
  }
  if (TERMINAL.has(status)) {
    const cancel = document.getElementById("cancel-form");
    if (cancel) cancel.classList.add("hidden");
    if (job.model_version && !document.querySelector('[data-test="version-link"]')) {
      const link = document.getElementById("version-link");
      const { name, version } = job.model_version;
      link.href = `/ui/models/${encodeURIComponent(name)}/versions/${version}`;
      link.textContent = `Open ${name} v${version}`;
      link.dataset.test = "version-link";
      link.classList.remove("hidden");
    }
  }
  drawPhases();
}

async function refresh() {
  try {
    const response = await fetch(`/ui/api/v1/jobs/${encodeURIComponent(jobId)}`, { credentials: "same-origin" });
    if (response.ok) showStatus(await response.json());
  } catch {
    // the next tick tries again
  }
}

async function poll() {
  await refresh();
  if (!TERMINAL.has(status)) setTimeout(poll, 2000);
}

drawPhases();
if (!TERMINAL.has(status)) setTimeout(poll, 1000);
