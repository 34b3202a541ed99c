// A version's "Try it": an image dropped or a text typed goes to the API's own prediction
// handler (/ui/api/v1/models/{name}/predict?version=N); the top labels come back as bars,
// with the timing the server reports (X-Queue-Time-Ms, X-Inference-Time-Ms, Server-Timing).
import { csrfToken, el, fmt, problemOf, setWidth } from "./dom.js";

const card = document.getElementById("try");
const TOP_K = 5;

if (card && (document.getElementById("try-file") || document.getElementById("try-text"))) {
  const { name, version, modality } = card.dataset;
  const url = `/ui/api/v1/models/${encodeURIComponent(name)}/predict?version=${encodeURIComponent(version)}`;
  const out = document.getElementById("predictions");
  const timing = document.getElementById("timing");
  const error = document.getElementById("try-error");
  const preview = document.getElementById("try-preview");

  const showError = (message) => {
    error.textContent = message;
    error.classList.remove("hidden");
  };

  const handlerMs = (header) => {
    const match = /handler;dur=([0-9.]+)/.exec(header || "");
    return match ? Number.parseFloat(match[1]) : null;
  };

  const showAnswer = (answer, response, roundTrip) => {
    const prediction = answer.predictions[0];
    const rows = [];
    if ("value" in prediction) {
      const value = Array.isArray(prediction.value) ? prediction.value.map((v) => fmt(v, 4)).join(", ") : fmt(prediction.value, 4);
      rows.push(el("div", { class: "regression-answer", "data-test": "value" }, value));
      if (prediction.interval) {
        const [lo, hi] = prediction.interval;
        rows.push(el("div", { class: "muted" }, `${Math.round(100 * prediction.coverage)}% interval: ${fmt(lo, 4)} to ${fmt(hi, 4)}`));
      }
    } else {
      const scores = prediction.scores || [{ label: prediction.label, score: prediction.score }];
      const chosen = new Set(prediction.labels || [prediction.label]);
      for (const { label, score } of scores) {
        const fill = el("div", { class: "fill" });
        setWidth(fill, 100 * score);
        rows.push(
          el(
            "div",
            { class: `pred${chosen.has(label) ? " top" : ""}`, "data-label": label },
            el("span", { class: "name", title: label }, label),
            el("div", { class: "track" }, fill),
            el("span", { class: "p" }, `${(100 * score).toFixed(1)}%`),
          ),
        );
      }
    }
    out.replaceChildren(...rows);
    const queue = response.headers.get("X-Queue-Time-Ms");
    const inference = response.headers.get("X-Inference-Time-Ms");
    const handler = handlerMs(response.headers.get("Server-Timing"));
    timing.replaceChildren(
      "Server: ",
      el("b", {}, `${fmt(Number.parseFloat(inference), 2)} ms`), " inference, ",
      el("b", {}, `${fmt(Number.parseFloat(queue), 2)} ms`), " queued",
      handler !== null ? ", " : "", handler !== null ? el("b", {}, `${fmt(handler, 2)} ms`) : "",
      handler !== null ? " in the handler" : "",
      ` · ${fmt(roundTrip, 0)} ms round trip · v${answer.model.version}`,
    );
  };

  const send = async (body, headers) => {
    error.classList.add("hidden");
    out.replaceChildren(el("div", { class: "muted" }, "Predicting…"));
    timing.replaceChildren();
    const started = performance.now();
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfToken(), ...headers },
        body,
      });
      const roundTrip = performance.now() - started;
      if (!response.ok) {
        out.replaceChildren();
        showError((await problemOf(response)).message);
        return;
      }
      showAnswer(await response.json(), response, roundTrip);
    } catch {
      out.replaceChildren();
      showError("Could not reach the server.");
    }
  };

  if (modality === "image") {
    const input = document.getElementById("try-file");
    const zone = document.getElementById("try-drop");
    const predictFile = (file) => {
      if (!file) return;
      preview.src = URL.createObjectURL(file);
      preview.classList.remove("hidden");
      const data = new FormData();
      data.append("file", file, file.name);
      data.append("top_k", String(TOP_K));
      send(data, {});
    };
    input.addEventListener("change", () => predictFile(input.files[0]));
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (event) => {
        event.preventDefault();
        zone.classList.add("over");
      });
    }
    for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      predictFile(event.dataTransfer.files[0]);
    });
  } else {
    const text = document.getElementById("try-text");
    const run = () => {
      if (!text.value.trim()) {
        showError("Type a text first.");
        return;
      }
      send(JSON.stringify({ inputs: [text.value], top_k: TOP_K }), { "Content-Type": "application/json" });
    };
    document.getElementById("try-run").addEventListener("click", run);
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.metaKey || event.ctrlKey)) run();
    });
  }
}
