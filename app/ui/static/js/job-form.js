// The new-job form: backbones that fit the dataset, and a dry run of the request as it is
// filled in, which shows what each `auto` hyperparameter resolves to and the time estimate.
import { csrfToken, duration, el, fmt, problemOf } from "./dom.js";

const form = document.getElementById("job-form");
const dataset = document.getElementById("dataset_id");
const backbone = document.getElementById("backbone");
const modelName = document.getElementById("model_name");
const planBody = document.getElementById("plan-body");
const planStatus = document.getElementById("plan-status");
let nameEdited = modelName.value !== "" && modelName.value !== suggested();

function modality() {
  const option = dataset.selectedOptions[0];
  return option ? option.dataset.modality : "";
}

function suggested() {
  const option = dataset.selectedOptions[0];
  if (!option) return "";
  const stem = (option.dataset.name || "").replace(/\.[^.]*$/, "");
  return stem.replace(/[^a-zA-Z0-9._-]+/g, "-").replace(/^[-._]+|[-._]+$/g, "").slice(0, 60) || "model";
}

function fitBackbones() {
  const wanted = modality();
  let firstFit = null;
  for (const option of backbone.options) {
    const fits = !wanted || option.dataset.modality === wanted;
    option.hidden = !fits;
    if (fits && !option.disabled && !firstFit) firstFit = option;
  }
  const current = backbone.selectedOptions[0];
  if ((!current || current.hidden || current.disabled) && firstFit) backbone.value = firstFit.value;
  for (const field of document.querySelectorAll("[data-hp]")) {
    const only = field.dataset.modality;
    field.classList.toggle("hidden", Boolean(only) && Boolean(wanted) && only !== wanted);
  }
}

function typed(raw) {
  const text = raw.trim();
  if (text === "true" || text === "false") return text === "true";
  if (/^[+-]?\d+$/.test(text)) return Number.parseInt(text, 10);
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number.parseFloat(text);
  return text;
}

function request() {
  const data = new FormData(form);
  const hyperparameters = {};
  const body = { dry_run: true, hyperparameters };
  for (const [key, value] of data.entries()) {
    if (typeof value !== "string" || !value.trim()) continue;
    if (key.startsWith("hp_")) {
      if (value.trim().toLowerCase() !== "auto") hyperparameters[key.slice(3)] = typed(value);
    } else if (["dataset_id", "backbone", "model_name", "method"].includes(key)) body[key] = value.trim();
    else if (key === "validation_split" || key === "seed") body[key] = typed(value);
  }
  return body;
}

function compact(value) {
  if (typeof value !== "number" || Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(4)));
}

// Each field's resolved value; a field the plan does not use (fine-tuning settings of a
// linear probe, a regression's loss...) is dimmed.
function showAuto(resolved, planned) {
  for (const span of document.querySelectorAll("[data-auto-for]")) {
    const name = span.dataset.autoFor;
    const input = document.getElementById(`hp_${name}`);
    const given = input && input.value.trim() && input.value.trim().toLowerCase() !== "auto";
    const field = span.closest(".field");
    const used = !planned || name in resolved;
    field.classList.toggle("unused", !used);
    if (!used) span.textContent = "not used";
    else if (name in resolved) span.textContent = given ? "" : `auto: ${compact(resolved[name])}`;
    else span.textContent = "";
  }
}

function showPlan(answer) {
  const plan = answer.plan;
  showAuto(plan.hyperparameters || {}, true);
  const steps = (plan.candidates || []).map((c) =>
    el("li", {}, el("strong", {}, c.name), ` — ${c.description} (about ${duration(c.estimated_seconds)})`),
  );
  const parts = [
    el("div", { class: "stat" }, el("div", { class: "k" }, "Estimated time"),
      el("div", { class: "v", "data-test": "estimate" }, duration(plan.estimated_seconds))),
    el("p", { class: "small muted" }, `On an idle ${plan.device} worker, for ${fmt(answer.num_examples)} examples.`),
    el("h3", {}, "It will try"),
    el("ol", {}, ...steps),
  ];
  if (plan.time_budget_seconds) {
    parts.push(el("p", { class: "small" }, `auto's fine-tuning budget: ${duration(plan.time_budget_seconds)}.`));
  }
  planBody.classList.remove("muted");
  planBody.replaceChildren(...parts);
  planStatus.textContent = "auto values resolved";
}

let timer = null;
let sequence = 0;
async function dryRun() {
  const body = request();
  if (!body.dataset_id || !body.backbone || !body.model_name) return;
  const mine = ++sequence;
  planStatus.textContent = "planning…";
  try {
    const response = await fetch("/ui/api/v1/jobs", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body),
    });
    if (mine !== sequence) return;
    if (response.ok) {
      showPlan(await response.json());
    } else {
      const { message } = await problemOf(response);
      planStatus.textContent = "";
      planBody.classList.remove("muted");
      planBody.replaceChildren(el("div", { class: "notice warn" }, message));
      showAuto({}, false);
    }
  } catch {
    planStatus.textContent = "could not reach the server";
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(dryRun, 350);
}

dataset.addEventListener("change", () => {
  if (!nameEdited) modelName.value = suggested();
  fitBackbones();
  schedule();
});
modelName.addEventListener("input", () => {
  nameEdited = true;
});
form.addEventListener("input", schedule);
form.addEventListener("change", schedule);
fitBackbones();
schedule();
