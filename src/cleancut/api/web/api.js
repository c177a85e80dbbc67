// The page's client for the native /v1 API. Every request carries the API key (when one is
// saved) as x-api-key, so the event stream is read with fetch() rather than EventSource,
// which cannot send headers.

const KEY_STORAGE = "cleancut.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, { hint = "", retryAfter = 0 } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.hint = hint;
    this.retryAfter = retryAfter;
  }

  get busy() {
    return this.status === 429 || this.status === 503;
  }
}

export function savedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function saveKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled: the key lasts until the page closes
  }
  memoryKey = key;
}

let memoryKey = savedKey();

function headers(extra = {}) {
  const h = new Headers(extra);
  if (memoryKey) h.set("x-api-key", memoryKey);
  return h;
}

function retryAfter(value) {
  const seconds = Number.parseFloat(value || "");
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
}

async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || "The request failed.";
  let hint = "";
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      hint = body.error.hint || "";
    }
  } catch {
    // not our JSON envelope (a proxy's page): keep the status line
  }
  return new ApiError(response.status, code, message, {
    hint,
    retryAfter: retryAfter(response.headers.get("Retry-After")),
  });
}

function networkError(err) {
  if (err && err.name === "AbortError") return err;
  return new ApiError(0, "network", "The server cannot be reached.", {
    hint: "check that cleancut serve is running and the connection is up",
  });
}

export async function request(path, { method = "GET", body, json, signal, accept } = {}) {
  const extra = {};
  if (json !== undefined) {
    extra["content-type"] = "application/json";
    body = JSON.stringify(json);
  }
  if (accept) extra.accept = accept;
  let response;
  try {
    response = await fetch(path, { method, body, signal, headers: headers(extra), cache: "no-store" });
  } catch (err) {
    throw networkError(err);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function getJson(path, options) {
  const response = await request(path, options);
  return response.json();
}

export async function getBlob(path, options) {
  const response = await request(path, options);
  return response.blob();
}

// Multipart upload with upload progress (fetch has none): resolves to the job.
export function upload(file, options, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const form = new FormData();
    form.append("file", file, file.name || "image");
    form.append("options", JSON.stringify(options || {}));
    xhr.open("POST", "/v1/jobs");
    headers().forEach((value, name) => xhr.setRequestHeader(name, value));
    xhr.responseType = "text";
    if (onProgress) {
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) onProgress(e.loaded / e.total);
      });
    }
    const abort = () => xhr.abort();
    signal?.addEventListener("abort", abort, { once: true });
    xhr.addEventListener("load", () => {
      signal?.removeEventListener("abort", abort);
      const response = new Response(xhr.responseText, {
        status: xhr.status,
        headers: { "content-type": xhr.getResponseHeader("content-type") || "" },
      });
      if (xhr.status >= 200 && xhr.status < 300) {
        response.json().then(resolve, reject);
        return;
      }
      errorFrom(response).then((err) => {
        err.retryAfter = retryAfter(xhr.getResponseHeader("Retry-After"));
        reject(err);
      });
    });
    xhr.addEventListener("error", () => reject(networkError(null)));
    xhr.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    xhr.send(form);
  });
}

export function submitUrl(url, options, { signal } = {}) {
  return getJson("/v1/jobs", { method: "POST", json: { url, options }, signal });
}

export function applyEffects(jobId, options, { signal } = {}) {
  return getJson(`/v1/jobs/${encodeURIComponent(jobId)}/effects`, {
    method: "POST",
    json: { options },
    signal,
  });
}

export function cancelJob(jobId) {
  return request(`/v1/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE" });
}

// Server-Sent Events from a fetch() body: yields {event, data} with data parsed as JSON.
export async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
          event = "message";
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event = text;
          else if (field === "data") data.push(text);
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
/** Resolves after `ms`, or rejects with an AbortError as soon as `signal` aborts. */
export const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("aborted", "AbortError"));
      },
      { once: true },
    );
  });

// Follows a job's event stream until it ends; reconnects (after checking the job) when the
// stream drops. Resolves to {status, error?}; onEvent gets every event's data.
export async function follow(jobId, onEvent, { signal } = {}) {
  const id = encodeURIComponent(jobId);
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await request(`/v1/jobs/${id}/events`, {
        signal,
        accept: "text/event-stream",
      });
      for await (const { event, data } of readEvents(response.body)) {
        onEvent(event, data);
        if (event === "complete") return { status: "succeeded" };
        if (event === "error") {
          return {
            status: data.status === "canceled" ? "canceled" : "failed",
            error: new ApiError(0, data.code || "failed", data.message || "The job failed."),
          };
        }
      }
    } catch (err) {
      if (err.name === "AbortError") throw err;
      if (err instanceof ApiError && err.status >= 400 && !err.busy) throw err;
    }
    const job = await getJson(`/v1/jobs/${id}`, { signal });
    if (TERMINAL.has(job.status)) {
      const error = job.error ? new ApiError(0, job.error.code, job.error.message) : null;
      return { status: job.status, error };
    }
    onEvent("state", job);
    await sleep(Math.min(500 * 2 ** attempt, 8000), signal);
  }
}

// Whether the server wants a key: an unauthenticated list answers 401 when it does.
export async function probeAuth() {
  try {
    await request("/v1/jobs?limit=1");
    return { required: Boolean(memoryKey), valid: true };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return { required: true, valid: false };
    return { required: Boolean(memoryKey), valid: true, error: err };
  }
}

// What the options schema offers (formats, refinement), from the OpenAPI document.
export async function capabilities() {
  const fallback = { formats: ["png", "webp", "avif", "jpeg"], refine: false, clipPath: false };
  try {
    const doc = await getJson("/openapi.json");
    const schemas = doc.components?.schemas || {};
    const props = schemas.RemovalOptions?.properties || {};
    const formats = props.format?.enum || fallback.formats;
    return { formats, refine: "refine" in props, clipPath: "clip_path" in props };
  } catch {
    return fallback;
  }
}
