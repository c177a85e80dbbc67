// cleancut's web page: intake (picker, drop, paste, URL), the queue with live progress from
// each job's event stream, the result viewer, adjustments through the effects endpoint, and
// downloads (one file, or every finished image in one zip).

import * as api from "./api.js";
import { Adjustments, FORMATS, formatsFor, isEmpty } from "./adjust.js";
import { Viewer } from "./viewer.js";
import { makeZip, uniqueName } from "./zip.js";

const $ = (id) => document.getElementById(id);

const STAGES = {
  fetch: "fetching the image",
  decode: "reading the image",
  inference: "finding the subject",
  refine: "refining the edges",
  compose: "composing",
  encode: "encoding",
  save: "saving",
};
const MAX_ACTIVE = 3; // uploads + event streams at once: browsers allow 6 connections a host
const MAX_BUSY_RETRIES = 5;
const PREVIEW = { format: "webp", lossless: false, quality: 85 };
const PREVIEW_DELAY = 250;
const MAX_RENDERS = 16;

const items = [];
let selected = null;
let nextId = 1;
let adjust = null;
let viewer = null;
let formats = FORMATS.slice(0, 4);
let previewTimer = 0;
let previewController = null;

// ---- announcements --------------------------------------------------------------------------

function announce(text) {
  const region = $("announcer");
  region.textContent = "";
  requestAnimationFrame(() => {
    region.textContent = text;
  });
}

function alertText(text) {
  const region = $("alerter");
  region.textContent = "";
  requestAnimationFrame(() => {
    region.textContent = text;
  });
}

// The message a person reads for an error: what kind of problem, then the server's words.
export function describeError(err) {
  if (!(err instanceof api.ApiError)) return err?.message || "Something went wrong.";
  const kinds = {
    upload_too_large: "Too large",
    image_too_large: "Too large",
    unsupported_format: "Unsupported format",
    corrupt_image: "Not a readable image",
    invalid_input: "Not accepted",
    invalid_options: "Not accepted",
    queue_full: "Server busy",
    rate_limited: "Too many requests",
    model_unavailable: "Server busy",
    unauthorized: "API key needed",
    forbidden: "Not allowed",
    job_timeout: "Took too long",
    network: "Offline",
  };
  let kind = kinds[err.code];
  if (!kind && err.status === 413) kind = "Too large";
  if (!kind && err.busy) kind = "Server busy";
  if (!kind && err.status === 415) kind = "Unsupported format";
  const message = err.message.replace(/\.$/, "");
  const text = kind ? `${kind}: ${message}.` : `${message}.`;
  return err.hint ? `${text} (${err.hint})` : text;
}

// ---- the queue ------------------------------------------------------------------------------

function createItem({ file, url }) {
  const item = {
    id: nextId++,
    file,
    url,
    name: file ? file.name || "pasted image" : shortUrl(url),
    state: "waiting",
    status: "Waiting",
    percent: 0,
    jobId: null,
    error: null,
    controller: null,
    urls: { before: null, result: null, mask: null },
    resultBlob: null,
    renders: new Map(),
    el: null,
  };
  if (file) item.urls.before = URL.createObjectURL(file);
  const node = $("item-template").content.firstElementChild.cloneNode(true);
  item.el = node;
  node.dataset.id = String(item.id);
  node.querySelector(".item-name").textContent = item.name;
  const status = node.querySelector(".item-status");
  status.id = `item-status-${item.id}`;
  const select = node.querySelector(".item-select");
  select.setAttribute("aria-describedby", status.id);
  select.addEventListener("click", () => selectItem(item));
  const progress = node.querySelector(".item-progress");
  progress.setAttribute("aria-label", `${item.name} progress`);
  const remove = node.querySelector(".item-remove");
  remove.setAttribute("aria-label", `Remove ${item.name}`);
  remove.addEventListener("click", () => removeItem(item));
  const retry = node.querySelector(".item-retry");
  retry.setAttribute("aria-label", `Retry ${item.name}`);
  retry.addEventListener("click", () => retryItem(item));
  const thumb = node.querySelector(".thumb img");
  if (item.urls.before) thumb.src = item.urls.before;
  thumb.addEventListener("error", () => {
    if (item.urls.result && thumb.getAttribute("src") !== item.urls.result) thumb.src = item.urls.result;
    else thumb.removeAttribute("src");
  });
  $("queue").append(node);
  items.push(item);
  render(item);
  updateQueueSummary();
  return item;
}

function shortUrl(url) {
  try {
    const u = new URL(url);
    const last = u.pathname.split("/").filter(Boolean).pop();
    return decodeURIComponent(last || u.hostname);
  } catch {
    return url;
  }
}

function render(item) {
  const node = item.el;
  node.dataset.state = item.state;
  node.querySelector(".item-status").textContent = item.status;
  const progress = node.querySelector(".item-progress");
  progress.value = item.percent;
  progress.setAttribute("aria-valuetext", `${Math.round(item.percent)}%, ${item.status}`);
  node.querySelector(".item-retry").hidden = !(item.state === "failed" || item.state === "canceled");
  node.querySelector(".item-select").setAttribute("aria-pressed", String(item === selected));
  node.classList.toggle("selected", item === selected);
}

function setState(item, state, status, percent = item.percent) {
  const changed = item.state !== state;
  item.state = state;
  item.status = status;
  item.percent = percent;
  render(item);
  if (changed && ["queued", "done", "failed", "canceled"].includes(state)) {
    const text = `${item.name}: ${status}`;
    if (state === "failed") alertText(text);
    else announce(text);
  }
  if (changed) updateQueueSummary();
  if (item === selected && changed) scheduleRefresh(0);
}

function updateQueueSummary() {
  const done = items.filter((i) => i.state === "done").length;
  const failed = items.filter((i) => i.state === "failed").length;
  $("queue-empty").hidden = items.length > 0;
  const parts = [`${items.length} image${items.length === 1 ? "" : "s"}`];
  if (done) parts.push(`${done} done`);
  if (failed) parts.push(`${failed} failed`);
  $("queue-count").textContent = items.length ? parts.join(" · ") : "";
  $("download-all").disabled = done === 0;
  $("download").disabled = !(selected && selected.state === "done");
}

function pump() {
  const active = items.filter((i) => ["uploading", "queued", "processing", "busy"].includes(i.state));
  let free = MAX_ACTIVE - active.length;
  for (const item of items) {
    if (free <= 0) break;
    if (item.state === "waiting") {
      free -= 1;
      run(item);
    }
  }
}

async function submit(item, signal) {
  for (let attempt = 0; ; attempt++) {
    try {
      if (item.file) {
        setState(item, "uploading", "Uploading", 0);
        return await api.upload(item.file, {}, {
          signal,
          onProgress: (fraction) => setState(item, "uploading", `Uploading ${Math.round(fraction * 100)}%`, fraction * 100),
        });
      }
      setState(item, "uploading", "Sending the address", 0);
      return await api.submitUrl(item.url, {}, { signal });
    } catch (err) {
      if (!(err instanceof api.ApiError) || !err.busy || attempt >= MAX_BUSY_RETRIES) throw err;
      const wait = Math.max(1, Math.min(30, Math.ceil(err.retryAfter || 2 ** (attempt + 1))));
      setState(item, "busy", `Server busy, trying again in ${wait} s`, 0);
      await api.sleep(wait * 1000, signal);
    }
  }
}

function onJobEvent(item, event, data) {
  if (event === "complete" || event === "error") return;
  const percent = Number(data.percent ?? Math.round((data.progress || 0) * 100));
  if (data.status === "queued") {
    setState(item, "queued", "Queued", 0);
    return;
  }
  const stage = STAGES[data.stage] || data.stage || "working";
  const label = `Processing: ${stage}, ${percent}%`;
  setState(item, "processing", label.charAt(0).toUpperCase() + label.slice(1), percent);
}

async function run(item) {
  item.controller = new AbortController();
  const { signal } = item.controller;
  item.error = null;
  try {
    const job = await submit(item, signal);
    item.jobId = job.id;
    setState(item, "queued", "Queued", 0);
    const end = await api.follow(job.id, (event, data) => onJobEvent(item, event, data), { signal });
    if (end.status === "succeeded") await finish(item, signal);
    else if (end.status === "canceled") setState(item, "canceled", "Canceled", 0);
    else throw end.error || new api.ApiError(0, "failed", "The job failed.");
  } catch (err) {
    if (err?.name === "AbortError") return;
    item.error = err;
    setState(item, "failed", describeError(err), 0);
    if (err instanceof api.ApiError && err.code === "unauthorized") openKeyPanel(true);
  } finally {
    pump();
  }
}

async function finish(item, signal) {
  setState(item, "processing", "Fetching the result", 100);
  const id = encodeURIComponent(item.jobId);
  item.resultBlob = await api.getBlob(`/v1/jobs/${id}/result`, { signal });
  item.urls.result = URL.createObjectURL(item.resultBlob);
  if (!item.urls.before) item.urls.before = await originalUrl(item, signal);
  const thumb = item.el.querySelector(".thumb img");
  if (!thumb.getAttribute("src")) thumb.src = item.urls.before || item.urls.result;
  setState(item, "done", "Done", 100);
  if (!selected || selected.state !== "done") selectItem(item, { focus: false });
}

async function originalUrl(item, signal) {
  const blob = await api.getBlob(`/v1/jobs/${encodeURIComponent(item.jobId)}/original`, { signal });
  return URL.createObjectURL(blob);
}

// The browser cannot show every upload (RAW, PSD, EXR...): the photo as the server decoded
// it is the cut-out over its own unblurred background.
async function serverBefore(item) {
  if (item.beforeFromServer) return;
  item.beforeFromServer = true;
  try {
    const job = await api.applyEffects(item.jobId, { background: { type: "blur", blur: 0 }, ...PREVIEW });
    const blob = await api.getBlob(job.links.result);
    if (item.urls.before) URL.revokeObjectURL(item.urls.before);
    item.urls.before = URL.createObjectURL(blob);
    item.el.querySelector(".thumb img").src = item.urls.before;
    if (item === selected) viewer.show({ before: item.urls.before });
  } catch {
    // no comparison for this one
  }
}

function addFiles(files) {
  const added = [];
  for (const file of files) {
    const item = createItem({ file });
    if (file.size === 0) {
      item.error = new Error("The file is empty.");
      setState(item, "failed", "Empty file: there is nothing to upload.", 0);
    } else added.push(item);
  }
  if (added.length) announce(`${added.length} image${added.length === 1 ? "" : "s"} added`);
  pump();
}

function addUrl(url) {
  createItem({ url });
  announce("Image address added");
  pump();
}

function removeItem(item) {
  item.controller?.abort();
  if (item.jobId && ["queued", "processing"].includes(item.state)) api.cancelJob(item.jobId).catch(() => {});
  const index = items.indexOf(item);
  items.splice(index, 1);
  for (const url of [item.urls.before, item.urls.result, item.urls.mask, ...item.renders.values()]) {
    if (url) URL.revokeObjectURL(url);
  }
  item.el.remove();
  announce(`${item.name} removed`);
  if (selected === item) {
    const next = items.find((i) => i.state === "done") || null;
    selectItem(next, { focus: false });
  }
  const neighbour = items[Math.min(index, items.length - 1)];
  (neighbour ? neighbour.el.querySelector(".item-select") : $("file-input")).focus();
  updateQueueSummary();
  pump();
}

function retryItem(item) {
  item.controller?.abort();
  item.jobId = null;
  item.error = null;
  setState(item, "waiting", "Waiting", 0);
  item.el.querySelector(".item-select").focus();
  pump();
}

// ---- the viewer -----------------------------------------------------------------------------

function selectItem(item, { focus = false } = {}) {
  selected = item;
  for (const i of items) render(i);
  $("viewer-name").textContent = item ? item.name : "";
  updateQueueSummary();
  scheduleRefresh(0);
  if (focus) $("stage").focus();
}

function viewMode() {
  return document.querySelector('input[name="view"]:checked').value;
}

function scheduleRefresh(delay = PREVIEW_DELAY) {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(refreshView, delay);
}

async function rendered(item, request, signal) {
  const key = adjust.key(request);
  const cached = item.renders.get(key);
  if (cached) return cached;
  const job = await api.applyEffects(item.jobId, request, { signal });
  const blob = await api.getBlob(job.links.result, { signal });
  const url = URL.createObjectURL(blob);
  item.renders.set(key, url);
  while (item.renders.size > MAX_RENDERS) {
    const [oldest, old] = item.renders.entries().next().value;
    item.renders.delete(oldest);
    URL.revokeObjectURL(old);
  }
  return url;
}

async function maskUrl(item, options, signal) {
  const mask = adjust.maskOptions(options);
  if (isEmpty(mask)) {
    if (!item.urls.mask) {
      const blob = await api.getBlob(`/v1/jobs/${encodeURIComponent(item.jobId)}/mask`, { signal });
      item.urls.mask = URL.createObjectURL(blob);
    }
    return item.urls.mask;
  }
  return rendered(item, { ...mask, mode: "mask", format: "png" }, signal);
}

async function refreshView() {
  if (!adjust) return; // main() re-renders once the options are known
  previewController?.abort();
  const controller = new AbortController();
  previewController = controller;
  const item = selected;
  const status = $("stage-status");
  if (!item || item.state !== "done") {
    viewer.setEmpty(true);
    viewer.setBusy(false);
    status.textContent = item ? `${item.name}: ${item.status}` : "";
    return;
  }
  const mode = viewMode();
  const options = adjust.options();
  viewer.setBusy(true);
  try {
    let after;
    let note = "";
    if (mode === "mask") after = await maskUrl(item, options, controller.signal);
    else if (options === null) {
      after = item.urls.result;
      note = " Choose a background picture to see it.";
    } else if (isEmpty(options)) after = item.urls.result;
    else after = await rendered(item, { ...options, ...PREVIEW }, controller.signal);
    if (controller.signal.aborted) return;
    const what = mode === "mask" ? "mask" : `cut-out, ${adjust.describe(options ?? {})}`;
    viewer.show({ before: item.urls.before, after, alt: `${item.name}: ${what}` });
    status.textContent = `Showing ${item.name}: ${what}.${note}`;
    status.dataset.state = "ok";
  } catch (err) {
    if (err?.name === "AbortError") return;
    status.textContent = `The preview could not be made. ${describeError(err)}`;
    status.dataset.state = "error";
  } finally {
    if (previewController === controller) viewer.setBusy(false);
  }
}

// ---- downloads ------------------------------------------------------------------------------

function currentFormat() {
  return formats.find((f) => f.id === $("format").value) || formats[0];
}

function stem(name) {
  const clean = name.replace(/\.[^./]+$/, "").replace(/[\\/:*?"<>|]+/g, "_").trim();
  return clean || "image";
}

async function produce(item, format) {
  const options = adjust.options();
  if (options === null) throw new Error("Choose a background picture first.");
  const name = `${stem(item.name)}-cutout.${format.ext}`;
  if (format.id === "png" && isEmpty(options)) return { blob: item.resultBlob, name };
  const job = await api.applyEffects(item.jobId, { ...options, ...format.options });
  const blob = await api.getBlob(`${job.links.result}?download=true`);
  return { blob, name };
}

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

async function downloadOne() {
  const item = selected;
  if (!item || item.state !== "done") return;
  const status = $("download-status");
  const button = $("download");
  button.disabled = true;
  status.textContent = `Preparing ${item.name}…`;
  try {
    const { blob, name } = await produce(item, currentFormat());
    save(blob, name);
    status.textContent = `Saved ${name}.`;
  } catch (err) {
    status.textContent = `The download failed. ${describeError(err)}`;
    alertText(status.textContent);
  } finally {
    button.disabled = !(selected && selected.state === "done");
  }
}

async function downloadAll() {
  const ready = items.filter((i) => i.state === "done");
  if (!ready.length) return;
  const status = $("download-status");
  const button = $("download-all");
  button.disabled = true;
  const format = currentFormat();
  const entries = [];
  const taken = new Set();
  const failures = [];
  try {
    for (const [n, item] of ready.entries()) {
      status.textContent = `Preparing ${n + 1} of ${ready.length}…`;
      try {
        const { blob, name } = await produce(item, format);
        entries.push({ name: uniqueName(name, taken), data: new Uint8Array(await blob.arrayBuffer()) });
      } catch (err) {
        failures.push(`${item.name} (${describeError(err)})`);
      }
    }
    if (entries.length) save(makeZip(entries), "cleancut-images.zip");
    status.textContent = `Saved ${entries.length} image${entries.length === 1 ? "" : "s"} in cleancut-images.zip.`;
    if (failures.length) {
      status.textContent += ` Left out: ${failures.join("; ")}`;
      alertText(status.textContent);
    }
  } finally {
    button.disabled = !items.some((i) => i.state === "done");
  }
}

function fillFormats(caps) {
  formats = formatsFor(caps);
  const select = $("format");
  select.replaceChildren(
    ...formats.map((f) => {
      const option = document.createElement("option");
      option.value = f.id;
      option.textContent = f.label;
      return option;
    }),
  );
  const showNote = () => {
    $("format-note").textContent = currentFormat().note || "";
  };
  select.addEventListener("change", showNote);
  showNote();
}

// ---- the API key ----------------------------------------------------------------------------

function openKeyPanel(required) {
  const panel = $("key-panel");
  panel.hidden = false;
  $("key-toggle").setAttribute("aria-expanded", "true");
  if (required) {
    $("key-note").textContent =
      "This server needs an API key. It is sent as x-api-key and kept in this browser's local storage.";
    $("api-key").focus();
  }
}

function updateKeyLabel() {
  $("key-toggle-label").textContent = api.savedKey() ? "API key saved" : "API key";
}

function wireKey() {
  const panel = $("key-panel");
  const toggle = $("key-toggle");
  $("api-key").value = api.savedKey();
  toggle.addEventListener("click", () => {
    const open = panel.hidden;
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) $("api-key").focus();
  });
  $("key-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    api.saveKey($("api-key").value.trim());
    updateKeyLabel();
    const auth = await api.probeAuth();
    if (auth.required && !auth.valid) {
      $("key-note").textContent = "The server did not accept this key.";
      alertText("The server did not accept this key.");
      return;
    }
    $("key-note").textContent = "Key saved in this browser.";
    announce("API key saved");
    for (const item of items) {
      if (item.state === "failed" && item.error?.code === "unauthorized") retryItem(item);
    }
  });
  $("key-forget").addEventListener("click", () => {
    api.saveKey("");
    $("api-key").value = "";
    updateKeyLabel();
    $("key-note").textContent = "Key removed from this browser.";
    announce("API key forgotten");
  });
  updateKeyLabel();
}

// ---- intake ---------------------------------------------------------------------------------

function isEditable(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) && target.type !== "file";
}

function httpUrl(text) {
  try {
    const url = new URL(text.trim());
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function wireIntake() {
  const input = $("file-input");
  const zone = $("drop-zone");
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
  let depth = 0;
  document.addEventListener("dragenter", (e) => {
    if (![...(e.dataTransfer?.types || [])].some((t) => t === "Files" || t === "text/uri-list")) return;
    depth += 1;
    zone.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("dragging");
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) {
      addFiles(files);
      return;
    }
    const url = httpUrl(e.dataTransfer?.getData("text/uri-list")?.split("\n")[0] || e.dataTransfer?.getData("text/plain") || "");
    if (url) addUrl(url);
  });
  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) {
      e.preventDefault();
      addFiles(files);
      return;
    }
    if (isEditable(e.target)) return;
    const url = httpUrl(e.clipboardData?.getData("text") || "");
    if (url) {
      e.preventDefault();
      addUrl(url);
    }
  });
  const form = $("url-form");
  const field = $("url-input");
  const error = $("url-error");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const url = httpUrl(field.value);
    if (!url) {
      error.textContent = "Enter an address that starts with http:// or https://.";
      error.hidden = false;
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return;
    }
    error.hidden = true;
    field.removeAttribute("aria-invalid");
    field.value = "";
    addUrl(url);
  });
}

// ---- start ----------------------------------------------------------------------------------

async function main() {
  viewer = new Viewer(document, {
    onBeforeError: () => {
      if (selected?.jobId && selected.state === "done") serverBefore(selected);
    },
  });
  wireIntake();
  wireKey();
  for (const radio of document.querySelectorAll('input[name="view"]')) {
    radio.addEventListener("change", () => scheduleRefresh(0));
  }
  $("download").addEventListener("click", downloadOne);
  $("download-all").addEventListener("click", downloadAll);
  const [caps, auth] = await Promise.all([api.capabilities(), api.probeAuth()]);
  adjust = new Adjustments(document, caps, () => scheduleRefresh());
  fillFormats(caps);
  scheduleRefresh(0);
  if (auth.required && !auth.valid) openKeyPanel(true);
  document.documentElement.dataset.ready = "true";
}

main();
