// Small DOM helpers shared by every view: an element builder (text only, never HTML strings), dialogs, toasts
// and formatting of money, times and durations.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "style") for (const [k, v] of Object.entries(value)) element.style.setProperty(k, v);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let toastTimer = 0;
export function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("show"), 2600);
}

export function showLightbox(src, caption, filename) {
  const dialog = $("#lightbox");
  $("#lightbox-img").src = src;
  $("#lightbox-img").alt = caption || "Generated image";
  $("#lightbox-caption").textContent = caption || "";
  const link = $("#lightbox-download");
  link.href = src;
  link.download = filename;
  dialog.showModal();
}

export function downloadLink(src, filename, label = "Download") {
  return h("a", { class: "button ghost small", href: src, download: filename }, label);
}

export function fileName(id, mimeType = "image/png") {
  const ext = { "image/jpeg": "jpg", "image/webp": "webp" }[mimeType] ?? "png";
  return `${id || "imagegate"}.${ext}`;
}

export function money(amount) {
  if (amount === null || amount === undefined) return "—";
  const value = Number(amount);
  if (!Number.isFinite(value)) return String(amount);
  return value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: value < 1 ? 4 : 2 });
}

export function when(unixSeconds) {
  if (!unixSeconds) return "—";
  const date = new Date(unixSeconds * 1000);
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

export function fullTime(unixSeconds) {
  return unixSeconds ? new Date(unixSeconds * 1000).toLocaleString() : "—";
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

export function percent(fraction) {
  return fraction === null || fraction === undefined ? "—" : `${(fraction * 100).toFixed(fraction === 1 ? 0 : 1)}%`;
}

/** A task's status as a badge; a job that failed because it was refused says "refused". */
export function statusBadge(status, error = null) {
  const shown = status === "failed" && error?.code === "moderation_blocked" ? "refused" : status;
  return h("span", { class: `badge status-${status}` }, shown);
}

/** The shape of an aspect ratio as a small outlined box (CSS draws it from --w and --h). */
export function ratioShape(width, height, dashed = false) {
  const scale = 22 / Math.max(width, height);
  return h("span", {
    class: dashed ? "shape dashed" : "shape",
    "aria-hidden": "true",
    style: { "--w": `${Math.round(width * scale)}px`, "--h": `${Math.round(height * scale)}px` },
  });
}
