// Talking to the imagegate server: the API key (kept in localStorage), JSON requests, and error messages.

const KEY_STORAGE = "imagegate.key";

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code ?? null;
  }

  get badKey() {
    return this.status === 401 || this.code === "invalid_api_key" || this.code === "API_KEY_INVALID";
  }
}

export const session = {
  get key() {
    return localStorage.getItem(KEY_STORAGE) ?? "";
  },
  set key(value) {
    if (value) localStorage.setItem(KEY_STORAGE, value);
    else localStorage.removeItem(KEY_STORAGE);
  },
};

function messageOf(data, response) {
  // OpenAI bodies say {error:{message,code}}, Gemini's {error:{message,status}}, linkmodel's {msg}.
  const error = data && typeof data === "object" ? data.error ?? data : null;
  const message = error?.message || data?.msg || response.statusText || `HTTP ${response.status}`;
  return [message, error?.code ?? error?.status ?? null];
}

export async function api(path, { method = "GET", body, key = session.key, signal } = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The server could not be reached. Is imagegate still running?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const [message, code] = messageOf(data, response);
    throw new ApiError(response.status, message, typeof code === "number" ? null : code);
  }
  return data;
}

export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** Polls a task until it ends, calling onUpdate with every new state; quick at first, then every 1.5 s. */
export async function followTask(task, onUpdate, signal) {
  let current = task;
  let delay = 250;
  onUpdate(current);
  while (!TERMINAL.has(current.status)) {
    await sleep(delay, signal);
    delay = Math.min(delay * 1.6, 1500);
    current = await api(`/v1/tasks/${encodeURIComponent(current.id)}`, { signal });
    onUpdate(current);
  }
  return current;
}

export async function imageBlob(url) {
  const response = await fetch(url);
  if (!response.ok) throw new ApiError(response.status, `The image could not be loaded (HTTP ${response.status}).`);
  return response.blob();
}

export function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

export function base64ToBlob(data, mimeType) {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: mimeType });
}

/** An authenticated binary resource (a job's stored input image) as a Blob. */
export async function apiBlob(path, { key = session.key } = {}) {
  let response;
  try {
    response = await fetch(path, { headers: { Authorization: `Bearer ${key}` } });
  } catch {
    throw new ApiError(0, "The server could not be reached. Is imagegate still running?");
  }
  if (!response.ok) throw new ApiError(response.status, `The image could not be loaded (HTTP ${response.status}).`);
  return response.blob();
}
