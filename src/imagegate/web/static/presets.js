// Saved presets for the Create form (model, shape, resolution, count, format, seed, diffusion knobs): kept on
// the server per key (/v1/playground/presets), so they follow the key to other browsers. Presets an older page
// kept in this browser are moved to the server once.

import { api, session } from "./api.js";

const LEGACY_STORAGE = "imagegate.presets";
const FIELDS = ["aspectRatio", "resolution", "n", "format", "quality", "seed", "steps", "guidance", "negativePrompt"];

let cache = null; // name -> { id, model, ...fields }, for the key in cacheKey
let cacheKey = null;

function fromEntry(entry) {
  return { id: entry.id, model: entry.model ?? null, ...(entry.params ?? {}) };
}

function bodyOf(name, request) {
  const params = {};
  for (const field of FIELDS) if (request[field] !== undefined) params[field] = request[field];
  return { title: name, doc: { model: request.model ?? null, params } };
}

async function moveLegacy(presets) {
  let legacy;
  try {
    legacy = JSON.parse(localStorage.getItem(LEGACY_STORAGE) ?? "null");
  } catch {
    legacy = null;
  }
  if (!legacy || typeof legacy !== "object") return;
  for (const [name, request] of Object.entries(legacy)) {
    if (presets[name]) continue;
    presets[name] = fromEntry(await api("/v1/playground/presets", { method: "POST", body: bodyOf(name, request ?? {}) }));
  }
  localStorage.removeItem(LEGACY_STORAGE);
}

/** The key's presets by name (read once per page, then kept in step with what this page saves). */
export async function loadPresets() {
  if (cache && cacheKey === session.key) return cache;
  const presets = {};
  for (const entry of (await api("/v1/playground/presets?limit=200")).data) presets[entry.title] ??= fromEntry(entry);
  await moveLegacy(presets);
  cache = presets;
  cacheKey = session.key;
  return cache;
}

/** Save ``request``'s settings as ``name``, replacing a preset of that name. */
export async function savePreset(name, request) {
  const presets = await loadPresets();
  const existing = presets[name];
  const path = existing ? `/v1/playground/presets/${encodeURIComponent(existing.id)}` : "/v1/playground/presets";
  const entry = await api(path, { method: existing ? "PUT" : "POST", body: bodyOf(name, request) });
  presets[name] = fromEntry(entry);
}

export async function deletePreset(name) {
  const presets = await loadPresets();
  const existing = presets[name];
  if (!existing) return;
  await api(`/v1/playground/presets/${encodeURIComponent(existing.id)}`, { method: "DELETE" });
  delete presets[name];
}
