// mmrag's page: plain JavaScript against the REST API, no build step, no outside assets.
// Every request carries the API key from session storage (if any) as a bearer token; images are
// fetched the same way (an <img src> cannot send the key) and shown from blob URLs.
"use strict";

const $ = (sel) => document.querySelector(sel);
const KEY = "mmrag-api-key";
const state = { collection: null, polling: new Map() };

// -- talking to the API ------------------------------------------------------------------------
function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function detail(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    if (body.reason) return body.reason;
    return JSON.stringify(body);
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (!response.ok) throw new Error(`${await detail(response)} (HTTP ${response.status})`);
  return response.status === 204 ? null : response.json();
}

async function blobUrl(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw new Error(await detail(response));
  return URL.createObjectURL(await response.blob());
}

function showError(message) {
  const el = $("#error");
  el.textContent = message;
  el.hidden = !message;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// -- collections and documents ---------------------------------------------------------------
async function loadCollections(select) {
  const collections = await api("/collections");
  const names = collections.map((c) => c.name);
  if (select && !names.includes(select)) names.push(select); // created here, empty until its first upload
  const box = $("#collection");
  box.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  state.collection = select || state.collection || names[0] || null;
  if (state.collection) box.value = state.collection;
  await loadDocuments();
}

let documentsLoad = 0; // uploads finishing together each reload the list: only the newest load may draw it

async function loadDocuments() {
  const list = $("#documents");
  const load = ++documentsLoad;
  $("#units").hidden = true;
  if (!state.collection) { list.replaceChildren(); return; }
  let docs = [];
  try {
    docs = (await api(`/collections/${encodeURIComponent(state.collection)}/documents`)).documents;
  } catch (err) {
    if (!String(err.message).includes("HTTP 404")) throw err; // a new, still empty collection
  }
  if (load !== documentsLoad) return; // a later load has started; it draws the list
  list.replaceChildren();
  for (const d of docs) {
    list.append(el("li", { "data-document": d.id },
      el("span", { class: "name" }, d.file_name),
      el("span", { class: `status ${d.status}` }, d.status === "done" ? `${d.n_units} units` : d.status),
      d.status === "done" ? el("button", { type: "button", class: "quiet", onclick: () => showUnits(d) }, "Browse") : null,
      el("button", { type: "button", class: "quiet", "aria-label": `Delete ${d.file_name}`, onclick: () => deleteDocument(d) }, "Delete"),
      d.error ? el("span", { class: "reason" }, d.error) : null));
  }
}

async function showUnits(doc) {
  const box = $("#units");
  const { units } = await api(`/documents/${doc.id}/units`);
  const pages = new Map();
  for (const u of units) {
    const key = u.page || 0;
    if (!pages.has(key)) pages.set(key, []);
    pages.get(key).push(u);
  }
  box.replaceChildren(el("h3", {}, doc.file_name));
  for (const [page, items] of pages) {
    box.append(el("h3", {}, page ? `Page ${page}` : "No page"));
    for (const u of items) box.append(el("p", {}, `[${u.type}] ${(u.caption ? u.caption + "\n" : "") + u.text}`));
  }
  box.hidden = false;
}

async function deleteDocument(doc) {
  if (!confirm(`Delete ${doc.file_name}?`)) return;
  await api(`/documents/${doc.id}`, { method: "DELETE" });
  await loadDocuments();
}

// -- uploads: one job per file, its progress polled ----------------------------------------------
function upload(file) {
  const collection = state.collection;
  if (!collection) { showError("Create or choose a collection first."); return; }
  const bar = el("progress", { max: 100, value: 0, "aria-label": `Uploading ${file.name}` });
  const status = el("span", { class: "status" }, "uploading");
  const row = el("li", { "data-file": file.name }, el("span", { class: "name" }, file.name), bar, status);
  $("#uploads").append(row);
  const form = new FormData();
  form.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/collections/${encodeURIComponent(collection)}/documents?wait=0`);
  for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total); };
  xhr.onerror = () => finish(row, "failed", "the upload did not reach the server");
  xhr.onload = () => {
    bar.value = 100;
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON: the status says enough */ }
    if (xhr.status === 202 && body.job) { setStatus(row, "queued"); poll(row, body.job.id); }
    else if (xhr.status === 201) finish(row, "done", `${body.units} units`);
    else finish(row, "failed", body.detail && typeof body.detail === "string" ? body.detail : body.reason || `HTTP ${xhr.status}`);
  };
  xhr.send(form);
}

function setStatus(row, text) {
  const status = row.querySelector(".status");
  status.textContent = text;
  status.className = `status ${text}`;
}

function finish(row, outcome, why) {
  setStatus(row, outcome);
  row.querySelector("progress")?.remove();
  if (why) row.append(el("span", { class: outcome === "failed" ? "reason" : "status" }, why));
  // a failed file is listed too, with its reason: refresh on either outcome
  loadDocuments().catch((err) => showError(err.message));
}

function poll(row, jobId) {
  const tick = async () => {
    try {
      const job = await api(`/jobs/${jobId}`);
      const file = job.files[0] || {};
      if (file.status === "ok") return finish(row, "done", `${file.units} units`);
      if (file.status === "skipped") return finish(row, "done", "already stored, unchanged");
      if (file.status === "failed" || job.status === "failed" || job.status === "cancelled") {
        return finish(row, "failed", file.reason || job.error || job.status);
      }
      setStatus(row, file.status || job.status);
      setTimeout(tick, 400);
    } catch (err) {
      finish(row, "failed", err.message);
    }
  };
  tick();
}

// -- asking: the answer streamed, citations as evidence cards ------------------------------------
function answerWithLinks(text) {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    parts.push(text.slice(last, m.index));
    const n = m[1];
    parts.push(el("a", { href: `#cite-${n}`, class: "cite", onclick: () => flash(n) }, `[${n}]`));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function flash(n) {
  const card = document.getElementById(`cite-${n}`);
  if (!card) return;
  card.classList.add("flash");
  setTimeout(() => card.classList.remove("flash"), 1500);
}

function safeTable(html) {
  // the table is rebuilt from its cells' text: nothing from a document's markup runs or loads here
  const source = new DOMParser().parseFromString(html, "text/html").querySelector("table");
  if (!source) return null;
  const table = el("table");
  for (const tr of source.querySelectorAll("tr")) {
    const row = el("tr");
    for (const cell of tr.querySelectorAll("th, td")) {
      const copy = el(cell.tagName.toLowerCase(), {}, cell.textContent);
      for (const span of ["rowspan", "colspan"]) {
        const v = parseInt(cell.getAttribute(span) || "1", 10);
        if (v > 1 && v < 100) copy.setAttribute(span, String(v));
      }
      row.append(copy);
    }
    table.append(row);
  }
  return table;
}

function card(c) {
  const where = [c.page ? `page ${c.page}` : null, { text: "passage", table: "table", image: "figure" }[c.type] || c.type]
    .filter(Boolean).join(" · ");
  const body = el("article", { class: `card ${c.type}`, id: `cite-${c.number}`, tabindex: "-1" },
    el("h3", {}, `[${c.number}] ${c.file_name || "?"}`), el("div", { class: "meta" }, where));
  if (c.page_url) {
    const img = el("img", { alt: `${c.file_name} page ${c.page}, the cited region outlined`, class: "thumb" });
    body.append(el("button", { type: "button", class: "page", "aria-label": `Open page ${c.page} of ${c.file_name} large`,
      onclick: () => openLarge(c.page_url, img.alt) }, img));
    blobUrl(c.page_url).then((url) => { img.src = url; }).catch(() => img.replaceWith(el("p", { class: "meta" }, "page image unavailable")));
  }
  if (c.type === "table" && c.html) {
    const table = safeTable(c.html);
    if (table) body.append(table);
  } else if (c.type === "image" && (c.crop_url || c.image_url)) {
    const img = el("img", { alt: c.snippet || "figure", class: "figure" });
    body.append(img);
    blobUrl(c.crop_url || c.image_url).then((url) => { img.src = url; }).catch(() => img.remove());
  }
  if (c.type !== "table" && c.snippet) body.append(el("p", {}, c.snippet));
  return body;
}

async function openLarge(path, alt) {
  const dialog = $("#viewer");
  const img = $("#viewer-img");
  img.alt = alt;
  img.src = await blobUrl(path.replace(/([?&])dpi=\d+/, "$1").concat(path.includes("?") ? "&dpi=150" : "?dpi=150"));
  dialog.showModal();
}

function* sseEvents(buffer) {
  // yields [event, data] for each complete event in the buffer; the caller keeps the remainder
  let idx;
  while ((idx = buffer.text.indexOf("\n\n")) >= 0) {
    const block = buffer.text.slice(0, idx);
    buffer.text = buffer.text.slice(idx + 2);
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    yield [name, data.length ? JSON.parse(data.join("\n")) : null];
  }
}

async function ask(event) {
  event.preventDefault();
  showError("");
  const question = $("#question").value.trim();
  if (!question || !state.collection) { showError(state.collection ? "Type a question." : "Create or choose a collection first."); return; }
  const types = [...document.querySelectorAll("input[name=type]:checked")].map((x) => x.value);
  const body = { query: question, collection: state.collection, top_k: 5 };
  if (types.length < 3) body.filters = { types };
  const answer = $("#answer");
  answer.hidden = false;
  answer.className = "answer";
  answer.replaceChildren("…");
  $("#cards").replaceChildren();
  const button = $("#ask-button");
  button.disabled = true;
  let streamed = "";
  try {
    const response = await fetch("/query?stream=true", { method: "POST", headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`${await detail(response)} (HTTP ${response.status})`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const buffer = { text: "" };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer.text += decoder.decode(value, { stream: true });
      for (const [name, data] of sseEvents(buffer)) {
        if (name === "citations") {
          $("#cards").replaceChildren(...data.citations.map(card));
          if (!data.citations.length) answer.replaceChildren("Nothing in this collection matches.");
        } else if (name === "token") {
          streamed += data.text;
          answer.replaceChildren(...answerWithLinks(streamed));
        } else if (name === "done") {
          const text = data.answer ?? streamed;
          if (data.kind === "no_answer") {
            answer.className = "answer no_answer";
            answer.replaceChildren("The documents do not say. ", ...answerWithLinks(text));
          } else {
            answer.replaceChildren(...answerWithLinks(text));
          }
          if (data.support) answer.append(el("span", { class: "support" }, `From: “${data.support}”`));
        } else if (name === "error") {
          throw new Error(`${data.detail} (HTTP ${data.status})`);
        }
      }
    }
  } catch (err) {
    answer.hidden = true;
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

// -- wiring -----------------------------------------------------------------------------------
function init() {
  $("#api-key").value = sessionStorage.getItem(KEY) || "";
  $("#key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("#api-key").value.trim();
    if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
    showError("");
    loadCollections().catch((err) => showError(err.message));
  });
  $("#collection").addEventListener("change", (e) => { state.collection = e.target.value; loadDocuments().catch((err) => showError(err.message)); });
  $("#new-collection").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("#new-name").value.trim();
    if (!name) return;
    $("#new-name").value = "";
    loadCollections(name).catch((err) => showError(err.message));
  });
  $("#delete-collection").addEventListener("click", async () => {
    if (!state.collection || !confirm(`Delete the collection ${state.collection} and all its documents?`)) return;
    try {
      await api(`/collections/${encodeURIComponent(state.collection)}`, { method: "DELETE" });
      state.collection = null;
      await loadCollections();
    } catch (err) { showError(err.message); }
  });
  const drop = $("#drop");
  const files = $("#files");
  files.addEventListener("change", () => { [...files.files].forEach(upload); files.value = ""; });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); files.click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); [...e.dataTransfer.files].forEach(upload); });
  $("#ask-form").addEventListener("submit", ask);
  $("#question").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("#ask-form").requestSubmit(); } });
  loadCollections().catch((err) => showError(err.message));
}

document.addEventListener("DOMContentLoaded", init);
