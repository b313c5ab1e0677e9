// The dashboard's behaviour: the CSRF header on every state-changing request, forms and
// buttons that call the JSON API, and the drop zone's batched uploads. No inline scripts:
// the pages' Content-Security-Policy allows only files served by the API.
"use strict";

const CSRF_COOKIE = "csrf_access_token";
const CSRF_HEADER = "X-CSRF-TOKEN";

function csrfToken() {
  for (const part of document.cookie.split("; ")) {
    const [name, value] = part.split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(value || "");
  }
  return "";
}

document.addEventListener("htmx:configRequest", (event) => {
  event.detail.headers[CSRF_HEADER] = csrfToken();
});

async function errorText(response) {
  try {
    const body = await response.json();
    return body.message || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function callApi(method, url, body, then, errorOutput) {
  const response = await fetch(url, {
    method,
    body,
    headers: { [CSRF_HEADER]: csrfToken() },
    credentials: "same-origin",
  });
  if (response.ok) {
    window.location.assign(then || window.location.href);
  } else if (errorOutput) {
    errorOutput.textContent = await errorText(response); // text, never HTML
  }
}

function wireApiForms() {
  for (const form of document.querySelectorAll("form[data-api]")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const fields = new URLSearchParams(new FormData(form));
      callApi(form.method.toUpperCase(), form.action, fields, form.dataset.then,
        form.querySelector("[data-error]"));
    });
  }
  for (const button of document.querySelectorAll("button[data-api-delete]")) {
    button.addEventListener("click", () => {
      callApi("DELETE", button.dataset.apiDelete, null, button.dataset.then, null);
    });
  }
}

// Files of a dropped folder, read recursively where the browser offers entries.
function filesOfEntry(entry) {
  if (entry.isFile) return new Promise((resolve) => entry.file((f) => resolve([f]), () => resolve([])));
  if (!entry.isDirectory) return Promise.resolve([]);
  const reader = entry.createReader();
  return new Promise((resolve) => {
    const found = [];
    const more = () => reader.readEntries(async (entries) => {
      if (!entries.length) return resolve(found);
      for (const child of entries) found.push(...(await filesOfEntry(child)));
      more();
    }, () => resolve(found));
    more();
  });
}

async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry());
  if (entries.every(Boolean)) return (await Promise.all(entries.map(filesOfEntry))).flat();
  return [...dataTransfer.files];
}

function sendBatch(url, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("data", file, file.webkitRelativePath || file.name);
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader(CSRF_HEADER, csrfToken());
    request.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
    request.addEventListener("load", () => {
      if (request.status < 300) return resolve();
      let message = `${request.status}`;
      try { message = JSON.parse(request.responseText).message; } catch { /* keep the status */ }
      reject(new Error(message));
    });
    request.addEventListener("error", () => reject(new Error("the upload failed")));
    request.send(form);
  });
}

async function upload(zone, files) {
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const perBatch = Number(zone.dataset.batch) || 50;
  const total = files.reduce((sum, f) => sum + f.size, 0) || 1;
  let sent = 0;
  bar.value = 0;
  try {
    for (let i = 0; i < files.length; i += perBatch) {
      const batch = files.slice(i, i + perBatch);
      const size = batch.reduce((sum, f) => sum + f.size, 0);
      await sendBatch(zone.dataset.upload, batch, (part) => { bar.value = (sent + part * size) / total; });
      sent += size;
      bar.value = sent / total;
      status.textContent = `${Math.min(i + perBatch, files.length)} of ${files.length} uploaded`;
    }
  } catch (error) {
    status.textContent = `Upload refused: ${error.message}`;
  }
}

function wireDropZone() {
  const zone = document.getElementById("drop");
  if (!zone) return;
  for (const input of zone.querySelectorAll("input[type=file]")) {
    input.addEventListener("change", () => upload(zone, [...input.files]));
  }
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    upload(zone, await droppedFiles(event.dataTransfer));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireApiForms();
  wireDropZone();
});
