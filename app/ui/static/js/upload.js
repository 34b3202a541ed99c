// The upload form: XMLHttpRequest for its upload progress, to the API's own upload handler
// under the session (/ui/api/v1/datasets), with the CSRF token in a header.
import { csrfToken, randomKey } from "./dom.js";

const form = document.getElementById("upload-form");
const input = document.getElementById("upload-file");
const zone = document.getElementById("dropzone");
const chosen = document.getElementById("upload-chosen");
const task = document.getElementById("upload-task");
const status = document.getElementById("upload-status");
const bar = document.querySelector("#upload-progress > div");
const track = document.getElementById("upload-progress");
const phase = document.getElementById("upload-phase");
const percent = document.getElementById("upload-percent");
const error = document.getElementById("upload-error");
const submit = document.getElementById("upload-submit");

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

function guessTask(name) {
  const lower = name.toLowerCase();
  const wanted = lower.endsWith(".zip") ? "image_classification" : "text_classification";
  if (task.value.endsWith("regression")) return; // the user chose one: keep it
  if ([...task.options].some((o) => o.value === wanted)) task.value = wanted;
}

function showChosen() {
  const file = input.files[0];
  chosen.textContent = file ? `${file.name} · ${size(file.size)}` : "";
  if (file) guessTask(file.name);
}

input.addEventListener("change", showChosen);
for (const name of ["dragenter", "dragover"]) {
  zone.addEventListener(name, (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  zone.addEventListener(name, () => zone.classList.remove("over"));
}
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  if (event.dataTransfer.files.length) {
    input.files = event.dataTransfer.files;
    showChosen();
  }
});

function fail(message) {
  error.textContent = message;
  error.classList.remove("hidden");
  status.classList.add("hidden");
  submit.disabled = false;
}

function progress(value, text) {
  track.classList.remove("indeterminate");
  bar.style.width = `${value}%`;
  percent.textContent = `${Math.round(value)}%`;
  phase.textContent = text;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const file = input.files[0];
  if (!file) {
    fail("Choose a file first.");
    return;
  }
  error.classList.add("hidden");
  status.classList.remove("hidden");
  submit.disabled = true;
  progress(0, `Uploading ${file.name}…`);
  const data = new FormData(form);
  for (const [key, value] of [...data.entries()]) {
    if (value === "" && key !== "file") data.delete(key);
  }
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/ui/api/v1/datasets");
  xhr.setRequestHeader("X-CSRF-Token", csrfToken());
  xhr.setRequestHeader("Idempotency-Key", randomKey());
  xhr.responseType = "json";
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) progress((100 * e.loaded) / e.total, `Uploading ${file.name}…`);
  });
  xhr.upload.addEventListener("load", () => {
    progress(100, "Uploaded. Auditing the data: reading every file, finding duplicates…");
    track.classList.add("indeterminate");
    percent.textContent = "";
  });
  xhr.addEventListener("error", () => fail("The upload was interrupted: check the connection and try again."));
  xhr.addEventListener("load", () => {
    const body = xhr.response || {};
    const id = body.id || (body.dataset && body.dataset.id);
    if (xhr.status === 201 || xhr.status === 202) {
      track.classList.remove("indeterminate");
      track.classList.add("done");
      phase.textContent = xhr.status === 201 ? "Ready." : "Still processing; opening its page.";
      window.location.assign(`/ui/datasets/${encodeURIComponent(id)}`);
      return;
    }
    if (id) {
      // Refused by the audit (no usable examples, one label...): its page shows why.
      window.location.assign(`/ui/datasets/${encodeURIComponent(id)}`);
      return;
    }
    fail(body.detail || `The server answered HTTP ${xhr.status}.`);
  });
  xhr.send(data);
});
