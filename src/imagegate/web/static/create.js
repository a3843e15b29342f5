// The Create view: prompt, model, aspect ratio (drawn as shapes), number of images and input images; results
// appear card by card as their tasks finish, and the request can be copied as code.

import { api, blobToBase64, followTask, imageBlob } from "./api.js";
import { Tray } from "./inputs.js";
import { SNIPPETS } from "./snippets.js";
import { $, clear, downloadLink, fileName, h, ratioShape, showLightbox, toast } from "./ui.js";

const MAX_COUNT = 4;

export function initCreate(ctx) {
  const form = $("#create-form");
  const modelSelect = $("#create-model");
  const prompt = $("#create-prompt");
  const ratios = $("#create-ratios");
  const error = $("#create-error");
  const results = $("#results");
  const tray = new Tray($("#create-inputs"), { dropTarget: $("#view-create"), limit: 3 });

  clear(modelSelect, ctx.models.map((m) => h("option", { value: m.id }, `${m.display_name} · ${m.id}`)));
  clear(
    $("#create-count"),
    Array.from({ length: MAX_COUNT }, (_, i) =>
      h(
        "label",
        { class: "segment" },
        h("input", { type: "radio", name: "count", value: String(i + 1), checked: i === 0 }),
        h("span", {}, String(i + 1)),
      ),
    ),
  );

  const model = () => ctx.models.find((m) => m.id === modelSelect.value) ?? ctx.models[0];

  function renderRatios() {
    const previous = form.elements.ratio?.value ?? "1:1";
    const options = [{ ratio: "", width: 1, height: 1, label: "Auto" }, ...model().aspect_ratios];
    const chosen = options.some((o) => o.ratio === previous) ? previous : "1:1";
    clear(
      ratios,
      h("legend", {}, "Aspect ratio"),
      h(
        "div",
        { class: "ratio-grid" },
        options.map((o) =>
          h(
            "label",
            { class: "ratio", title: o.ratio ? `${o.width}×${o.height}` : "The first input image's shape, else 1:1" },
            h("input", { type: "radio", name: "ratio", value: o.ratio, checked: o.ratio === chosen }),
            ratioShape(o.width, o.height, !o.ratio),
            h("span", {}, o.label ?? o.ratio),
          ),
        ),
      ),
    );
  }

  modelSelect.addEventListener("change", () => {
    renderRatios();
    tray.setLimit(model().max_input_images);
  });
  renderRatios();
  tray.setLimit(model().max_input_images);

  function currentRequest() {
    const ratio = form.elements.ratio.value;
    const shape = model().aspect_ratios.find((r) => r.ratio === ratio);
    return {
      model: model().id,
      prompt: prompt.value.trim(),
      aspectRatio: ratio || null,
      size: shape ? `${shape.width}x${shape.height}` : null,
      n: Number(form.elements.count.value),
      inputs: tray.items.length,
    };
  }

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const request = currentRequest();
    if (!request.prompt) {
      error.textContent = "Write a prompt first.";
      prompt.focus();
      return;
    }
    error.textContent = "";
    const images = await Promise.all(
      tray.items.map(async (item) => `data:${item.blob.type};base64,${await blobToBase64(item.blob)}`),
    );
    run(request, images);
  });

  for (const button of form.querySelectorAll("[data-snippet]")) {
    button.addEventListener("click", () => {
      const request = currentRequest();
      const snippet = SNIPPETS[button.dataset.snippet];
      if (!request.prompt) request.prompt = prompt.placeholder;
      $("#snippet-title").textContent = `Copy as ${snippet.title}`;
      $("#snippet-code").textContent = snippet.make(request, location.origin);
      $("#snippet").showModal();
    });
  }

  function run(request, images) {
    $("#results-empty")?.remove();
    const shape = model().aspect_ratios.find((r) => r.ratio === request.aspectRatio);
    const cards = Array.from({ length: request.n }, () => resultCard(shape, request));
    const group = h(
      "section",
      { class: "run", "aria-label": `Results for ${request.prompt}` },
      h(
        "header",
        { class: "run-head" },
        h("p", { class: "run-prompt" }, request.prompt),
        h(
          "p",
          { class: "small muted" },
          [request.aspectRatio || "auto", `${request.n} image${request.n > 1 ? "s" : ""}`, request.model]
            .concat(images.length ? [`${images.length} input${images.length > 1 ? "s" : ""}`] : [])
            .join(" · "),
        ),
      ),
      h("div", { class: "run-grid" }, cards.map((c) => c.element)),
    );
    results.prepend(group);
    // One task per image rather than one task with n: the server fans n out to parallel calls anyway, and
    // separate tasks let each image appear (and report progress, or fail) on its own as soon as it is done.
    for (const card of cards) submitOne(request, images, card);
  }

  async function submitOne(request, images, card) {
    const body = { model: request.model, prompt: request.prompt, n: 1, response_format: "url" };
    if (request.aspectRatio) body.aspect_ratio = request.aspectRatio;
    if (images.length) body.images = images;
    const path = images.length ? "/v1/async/images/edits" : "/v1/async/images/generations";
    try {
      const task = await api(path, { method: "POST", body });
      await followTask(task, card.update);
      ctx.changed();
    } catch (failure) {
      card.fail(failure.message);
    }
  }

  function resultCard(shape, request) {
    const label = h("span", { class: "card-status" }, "Queued");
    const bar = h("progress", { max: "100", "aria-label": "Progress" });
    const frame = h("div", { class: "frame pending" }, h("div", { class: "frame-overlay" }, label, bar));
    if (shape) frame.style.setProperty("--ar", `${shape.width} / ${shape.height}`);
    const actions = h("div", { class: "card-actions" });
    const element = h("article", { class: "result card", "aria-busy": "true" }, frame, actions);

    function fail(message) {
      element.removeAttribute("aria-busy");
      frame.classList.remove("pending");
      frame.classList.add("failed");
      clear(frame, h("div", { class: "frame-overlay" }, h("strong", {}, "No image"), h("p", {}, message)));
    }

    function show(task) {
      const item = task.result?.data?.[0];
      if (!item?.url) return fail("The task finished without an image.");
      const name = fileName(task.id);
      const image = h("img", { src: item.url, alt: request.prompt, loading: "lazy" });
      image.addEventListener("load", () => {
        frame.classList.remove("pending");
        element.removeAttribute("aria-busy");
      });
      clear(frame, image);
      const reuse = async (use) => {
        try {
          await use(await imageBlob(item.url), name);
        } catch (failure) {
          toast(failure.message);
        }
      };
      clear(
        actions,
        h(
          "button",
          { type: "button", class: "ghost small", onclick: () => showLightbox(item.url, request.prompt, name) },
          "Open",
        ),
        downloadLink(item.url, name),
        h(
          "button",
          { type: "button", class: "ghost small", onclick: () => reuse((blob, n) => ctx.editInThread(blob, n)) },
          "Edit in thread",
        ),
        h(
          "button",
          {
            type: "button",
            class: "ghost small",
            onclick: () => reuse((blob, n) => tray.add(blob, n) && toast("Added as an input image.")),
          },
          "Use as input",
        ),
      );
    }

    function update(task) {
      if (task.status === "succeeded") return show(task);
      if (task.status === "failed" || task.status === "cancelled") {
        return fail(task.error?.message ?? `The task ${task.status}.`);
      }
      label.textContent = task.status === "running" ? "Generating…" : "Queued";
      if (task.progress) {
        bar.value = task.progress.percent;
        label.textContent = `Generating… ${task.progress.done}/${task.progress.total}`;
      }
    }

    return { element, update, fail };
  }

  return { addInput: (blob, name) => tray.add(blob, name) };
}
