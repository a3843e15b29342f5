// The Gallery view: the key's jobs from every dialect, newest first, searched and filtered on the server by
// prompt, model, status and date (GET /v1/playground/search), one card per job with all of its images. The
// detail dialog says why a job made nothing, lists every deployment tried, and reopens the job in Create or
// Thread, reruns it, copies it as code or deletes it from the history.

import { api, apiBlob } from "./api.js";
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
  toast,
  when,
} from "./ui.js";

const PAGE = 24;

function providerOf(task) {
  const trail = task.attempt_trail ?? [];
  if (task.deployment) return task.deployment;
  if (trail.length) return trail.map((a) => a.deployment).join(" → ");
  return "—";
}

/** A refusal is the model's decision, a failure the system's: they look different and say so. */
function outcomeOf(task) {
  if (task.error?.code === "moderation_blocked") return "refused";
  return task.status;
}

export function initGallery(ctx) {
  const grid = $("#gallery-grid");
  const more = $("#gallery-more");
  const empty = $("#gallery-empty");
  const error = $("#gallery-error");
  const filter = $("#gallery-filter");
  let lastId = null;
  let generation = 0; // bumped by every new search: answers to an older one are dropped, never shown
  let loadingMore = false;

  clear($("#filter-model"), h("option", { value: "" }, "All models"), ctx.models.map((m) => h("option", { value: m.id }, m.display_name || m.id)));

  function query(reset) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    const fields = { q: "#filter-q", model: "#filter-model", status: "#filter-status", since: "#filter-since", until: "#filter-until" };
    for (const [name, selector] of Object.entries(fields)) {
      const value = $(selector).value.trim();
      if (value) params.set(name, value);
    }
    if (!reset && lastId) params.set("before", lastId);
    return params.toString();
  }

  async function load(reset) {
    // A new search always runs (a Filter click while the first page loads must not be lost); "more" runs once.
    if (!reset && loadingMore) return;
    const mine = reset ? ++generation : generation;
    if (!reset) loadingMore = true;
    error.textContent = "";
    try {
      const page = await api(`/v1/playground/search?${query(reset)}`);
      const tasks = await Promise.all(
        page.data.map(async (asked) => {
          try {
            return { ...(await api(`/v1/tasks/${encodeURIComponent(asked.id)}`)), request: asked };
          } catch {
            return null;
          }
        }),
      );
      if (mine !== generation) return;
      if (reset) grid.replaceChildren();
      grid.append(...tasks.filter(Boolean).map(card));
      lastId = page.last_id ?? lastId;
      more.hidden = !page.has_more;
      empty.hidden = grid.children.length > 0;
      empty.textContent = filter.querySelector("input[type=search]").value || $("#filter-model").value || $("#filter-status").value
        ? "No job matches these filters."
        : "No jobs yet. Generate something first.";
    } catch (failure) {
      if (mine === generation) error.textContent = `The gallery could not be loaded: ${failure.message}`;
    } finally {
      if (!reset) loadingMore = false;
    }
  }

  function card(task) {
    const images = task.result?.data ?? [];
    const prompt = task.request?.prompt || "(no prompt)";
    const outcome = outcomeOf(task);
    const thumb = images[0]?.url
      ? h("img", { src: images[0].url, alt: "", loading: "lazy" })
      : h(
          "span",
          { class: `thumb-status status-${outcome}` },
          h("strong", {}, outcome === "refused" ? "Refused" : outcome === "failed" ? "Failed" : outcome === "cancelled" ? "Cancelled" : "Working…"),
          task.error?.message ? h("span", { class: "small" }, task.error.message) : null,
        );
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
          h("span", {}, providerOf(task)),
          h("time", { datetime: new Date(task.created_at * 1000).toISOString() }, when(task.created_at)),
        ),
      ),
    );
  }

  async function inputsOf(task) {
    const refs = task.request?.inputs ?? [];
    return Promise.all(
      refs.map(async (ref, i) => [await apiBlob(`/v1/playground/jobs/${encodeURIComponent(ref.job_id)}/inputs/${ref.sha256}`), `input-${i + 1}.png`]),
    );
  }

  function askedOf(task) {
    const req = task.request ?? {};
    const fmt = (req.output_mime_type ?? "image/png").replace("image/", "");
    return {
      model: task.model,
      prompt: req.prompt ?? "",
      aspectRatio: req.aspect_ratio ?? null,
      resolution: req.image_size ?? task.resolution ?? null,
      n: task.n,
      format: fmt,
      seed: req.seed ?? null, // null when the server drew it: reopening asks for a new image, as the job did
      steps: req.steps ?? null,
      guidance: req.guidance ?? null,
      negativePrompt: req.negative_prompt ?? null,
    };
  }

  function trailTable(task) {
    const trail = task.attempt_trail ?? [];
    if (!trail.length) return null;
    return h(
      "div",
      { class: "trail" },
      h("h3", {}, "Deployments tried"),
      h(
        "ol",
        {},
        trail.map((a) =>
          h(
            "li",
            {},
            h("strong", {}, a.deployment),
            ` — ${a.outcome}`,
            a.latency_ms !== null && a.latency_ms !== undefined ? ` in ${duration(a.latency_ms)}` : "",
            a.image !== undefined && task.n > 1 ? ` (image ${a.image + 1})` : "",
            a.reason ? h("span", { class: "muted" }, ` · ${a.reason}`) : null,
          ),
        ),
      ),
    );
  }

  function openDetail(task) {
    const images = task.result?.data ?? [];
    const prompt = task.request?.prompt || "(no prompt)";
    const took = task.finished_at && task.started_at ? duration((task.finished_at - task.started_at) * 1000) : "—";
    const req = task.request ?? {};
    const ratio = req.aspect_ratio ?? (req.input_images ? "auto (the first input's shape)" : "auto (1:1)");
    const inputs =
      req.context_images && req.context_images > req.input_images
        ? `${req.input_images} new, ${req.context_images} in the conversation`
        : String(req.input_images ?? 0);
    const rows = [
      ["Status", statusBadge(task.status, task.error)],
      ["Model", task.model],
      ["Provider", providerOf(task)],
      ["Cost", money(task.cost)],
      ["Images", `${images.length} of ${task.n}`],
      ["Aspect ratio", ratio],
      ["Size", task.result?.size ?? "—"],
      ["Input images", inputs],
      ["Created", fullTime(task.created_at)],
      ["Took", took],
      ["Attempts", String(task.attempts)],
      // the seed each image was made with: "Seed" in More options with n = 1 makes that image again
      ...(task.seeds ? [["Seeds", task.seeds.map((seed) => (seed === null ? "—" : String(seed))).join(", ")]] : []),
      ["API", task.dialect],
      ["Job id", h("code", {}, task.id)],
    ];
    const why = task.error
      ? h(
          "div",
          { class: task.error.code === "moderation_blocked" ? "why refused" : "why", role: "note" },
          h("strong", {}, task.error.code === "moderation_blocked" ? "Refused" : "Failed"),
          h("p", {}, task.error.message),
          task.error.code ? h("p", { class: "small muted" }, `Code: ${task.error.code}`) : null,
        )
      : null;
    const act = (label, fn) =>
      h(
        "button",
        {
          type: "button",
          class: "ghost small",
          onclick: async () => {
            try {
              await fn();
            } catch (failure) {
              toast(failure.message);
            }
          },
        },
        label,
      );
    const actions = h(
      "div",
      { class: "detail-actions" },
      act("Open in Create", async () => {
        $("#job-detail").close();
        await ctx.reopen(askedOf(task), await inputsOf(task));
      }),
      act("Open in Thread", async () => {
        $("#job-detail").close();
        await ctx.openInThread(task.request ?? { prompt: "", inputs: [] }, task, await inputsOf(task));
      }),
      act("Rerun", async () => {
        $("#job-detail").close();
        await ctx.reopen(askedOf(task), await inputsOf(task));
        ctx.rerun();
      }),
      act("Copy as code", () => {
        $("#job-detail").close();
        ctx.snippet({ ...askedOf(task), inputs: req.input_images ?? 0, size: task.result?.size ?? null });
      }),
      act("Delete", async () => {
        if (!window.confirm("Delete this job from your history? Its charge stays in the ledger.")) return;
        await api(`/v1/playground/jobs/${encodeURIComponent(task.id)}`, { method: "DELETE" });
        $("#job-detail").close();
        grid.querySelector(`[data-job="${CSS.escape(task.id)}"]`)?.closest("li")?.remove();
        toast("Deleted from your history.");
      }),
    );
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
                  { type: "button", class: "turn-image", "aria-label": `Open image ${i + 1} full size`, onclick: () => showLightbox(image.url, prompt, name) },
                  h("img", { src: image.url, alt: `${prompt} (${i + 1})` }),
                ),
                h("figcaption", {}, downloadLink(image.url, name)),
              );
            }),
          )
        : null,
      actions,
      h("dl", { class: "facts" }, rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
      trailTable(task),
    );
    $("#job-detail").showModal();
  }

  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });
  more.addEventListener("click", () => load(false));
  $("#gallery-refresh").addEventListener("click", () => load(true));
  return { refresh: () => load(true) };
}
