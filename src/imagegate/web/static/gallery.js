// The Gallery view: the key's jobs from every dialect, newest first (GET /v1/tasks), with their prompts
// (GET /v1/playground/jobs), and a detail dialog that also says why a failed or refused job made nothing.

import { api } from "./api.js";
import {
  $,
  clear,
  downloadLink,
  duration,
  fileName,
  fullTime,
  h,
  money,
  showLightbox,
  statusBadge,
  when,
} from "./ui.js";

const PAGE = 24;

export function initGallery() {
  const grid = $("#gallery-grid");
  const more = $("#gallery-more");
  const empty = $("#gallery-empty");
  const error = $("#gallery-error");
  let lastId = null;
  let loading = false;

  async function withPrompts(tasks) {
    if (!tasks.length) return tasks;
    const ids = tasks.map((t) => t.id).join(",");
    const described = await api(`/v1/playground/jobs?ids=${encodeURIComponent(ids)}`);
    const byId = new Map(described.data.map((d) => [d.id, d]));
    return tasks.map((t) => ({ ...t, request: byId.get(t.id) ?? null }));
  }

  async function load(reset) {
    if (loading) return;
    loading = true;
    error.textContent = "";
    try {
      const after = reset || !lastId ? "" : `&after=${encodeURIComponent(lastId)}`;
      const page = await api(`/v1/tasks?limit=${PAGE}${after}`);
      const tasks = await withPrompts(page.data);
      if (reset) grid.replaceChildren();
      grid.append(...tasks.map(card));
      lastId = page.last_id ?? lastId;
      more.hidden = !page.has_more;
      empty.hidden = grid.children.length > 0;
    } catch (failure) {
      error.textContent = `The gallery could not be loaded: ${failure.message}`;
    } finally {
      loading = false;
    }
  }

  function card(task) {
    const images = task.result?.data ?? [];
    const prompt = task.request?.prompt || "(no prompt)";
    const thumb = images[0]?.url
      ? h("img", { src: images[0].url, alt: "", loading: "lazy" })
      : h("span", { class: `thumb-status status-${task.status}` }, task.status === "failed" ? "!" : "…");
    return h(
      "li",
      {},
      h(
        "button",
        { type: "button", class: "gallery-card card", onclick: () => openDetail(task), dataset: { job: task.id } },
        h("div", { class: "thumb" }, thumb, images.length > 1 ? h("span", { class: "count" }, `×${images.length}`) : null),
        h("p", { class: "gallery-prompt" }, prompt),
        h(
          "p",
          { class: "gallery-meta small muted" },
          statusBadge(task.status, task.error),
          h("span", {}, money(task.cost)),
          h("span", {}, task.deployment ?? "—"),
          h("time", { datetime: new Date(task.created_at * 1000).toISOString() }, when(task.created_at)),
        ),
      ),
    );
  }

  function openDetail(task) {
    const images = task.result?.data ?? [];
    const prompt = task.request?.prompt || "(no prompt)";
    const took =
      task.finished_at && task.started_at ? duration((task.finished_at - task.started_at) * 1000) : "—";
    const rows = [
      ["Status", statusBadge(task.status, task.error)],
      ["Model", task.model],
      ["Provider", task.deployment ?? "—"],
      ["Cost", money(task.cost)],
      ["Images", `${images.length} of ${task.n}`],
      ["Aspect ratio", task.request?.aspect_ratio ?? (task.result?.size || "auto")],
      ["Input images", String(task.request?.input_images ?? 0)],
      ["Created", fullTime(task.created_at)],
      ["Took", took],
      ["Attempts", String(task.attempts)],
      ["API", task.dialect],
      ["Job id", h("code", {}, task.id)],
    ];
    const why = task.error
      ? h(
          "div",
          { class: "why", role: "note" },
          h("strong", {}, task.error.code === "moderation_blocked" ? "Refused" : "Failed"),
          h("p", {}, task.error.message),
          task.error.code ? h("p", { class: "small muted" }, `Code: ${task.error.code}`) : null,
        )
      : null;
    clear(
      $("#detail-body"),
      h("h2", { id: "detail-title" }, prompt),
      why,
      images.length
        ? h(
            "div",
            { class: "detail-images" },
            images.map((image, i) => {
              const name = fileName(`${task.id}-${i + 1}`);
              return h(
                "figure",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: "turn-image",
                    "aria-label": `Open image ${i + 1} full size`,
                    onclick: () => showLightbox(image.url, prompt, name),
                  },
                  h("img", { src: image.url, alt: `${prompt} (${i + 1})` }),
                ),
                h("figcaption", {}, downloadLink(image.url, name)),
              );
            }),
          )
        : null,
      h("dl", { class: "facts" }, rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    );
    $("#job-detail").showModal();
  }

  more.addEventListener("click", () => load(false));
  $("#gallery-refresh").addEventListener("click", () => load(true));
  return { refresh: () => load(true) };
}
