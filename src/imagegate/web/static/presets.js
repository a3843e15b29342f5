// Saved presets for the Create form (model, shape, resolution, count, format): kept in this browser, by name.

const STORAGE = "imagegate.presets";

export function loadPresets() {
  try {
    const parsed = JSON.parse(localStorage.getItem(STORAGE) ?? "{}");
    return parsed && typeof parsed === "object" ? parsed : {};
  } catch {
    return {};
  }
}

export function savePreset(name, request) {
  const presets = loadPresets();
  const { model, aspectRatio, resolution, n, format, quality } = request;
  presets[name] = { model, aspectRatio, resolution, n, format, quality };
  localStorage.setItem(STORAGE, JSON.stringify(presets));
}
