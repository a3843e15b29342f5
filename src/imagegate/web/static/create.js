// The Create view: prompt, model (or several, to compare), aspect ratio, resolution, number of images, output
// format and input images. The price of the request and the key's balance are shown before Generate, which is
// disabled when the key cannot pay and submits once per click. One task per model makes all of a run's images;
// each run is saved on the server (GET/POST /v1/playground/runs), so it is still here after a reload.

import { api, blobToBase64, followTask, imageBlob } from "./api.js";
import { Tray } from "./inputs.js";
import { deletePreset, loadPresets, savePreset } from "./presets.js";
import { SNIPPETS } from "./snippets.js";
import { $, clear, downloadLink, fileName, h, money, ratioShape, showLightbox, toast } from "./ui.js";

const MAX_COUNT = 4;
const RETRYABLE = new Set(["upstream_unavailable", "timeout", "rate_limit_exceeded", "no_deployment_available"]);

/** The price of one image of ``model`` at ``resolution`` (a decimal string), as the server quotes it. */
export function unitPrice(model, resolution) {
  const tier = (model.resolutions ?? []).find((r) => r.name === resolution);
  return Number(tier?.price_per_image ?? model.price_per_image ?? 0);
}

/** What a request costs and whether the key can pay: the same n × price the server holds. */
export function quote(models, resolution, n, account) {
  const total = models.reduce((sum, m) => sum + n * unitPrice(m, resolution), 0);
  const balance = account?.metered ? Number(account.balance) : null;
  return { total, balance, affordable: balance === null || balance >= total - 1e-9 };
}

/** A compare target: ``model`` or ``model@deployment`` (that deployment only, at its own prices). */
export function targetOf(models, value) {
  const [id, via] = value.split("@");
  const model = models.find((m) => m.id === id);
  if (!model || !via) return model ?? null;
  const deployment = (model.deployments ?? []).find((d) => d.name === via);
  if (!deployment) return null;
  return {
    ...model,
    key: value,
    via,
    display_name: `${model.display_name || model.id} · ${via}`,
    price_per_image: deployment.prices[model.default_resolution] ?? model.price_per_image,
    resolutions: (model.resolutions ?? []).map((r) => ({ ...r, price_per_image: deployment.prices[r.name] ?? r.price_per_image })),
  };
}

function sizesOf(model, resolution) {
  const tier = (model.resolutions ?? []).find((r) => r.name === resolution);
  return tier?.sizes ?? model.aspect_ratios;
}

export function initCreate(ctx) {
  const form = $("#create-form");
  const modelSelect = $("#create-model");
  const prompt = $("#create-prompt");
  const ratios = $("#create-ratios");
  const resolutionSelect = $("#create-resolution");
  const formatSelect = $("#create-format");
  const quality = $("#create-quality");
  const seedInput = $("#create-seed");
  const stepsInput = $("#create-steps");
  const guidanceInput = $("#create-guidance");
  const negativeInput = $("#create-negative");
  const compare = $("#create-compare");
  const compareList = $("#compare-models");
  const priceLine = $("#create-price");
  const generate = $("#generate");
  const error = $("#create-error");
  const results = $("#results");
  const tray = new Tray($("#create-inputs"), { dropTarget: $("#view-create"), limit: 3 });
  let submitting = false;

  clear(
    modelSelect,
    ctx.models.map((m) => h("option", { value: m.id }, m.display_name && m.display_name !== m.id ? `${m.display_name} · ${m.id}` : m.id)),
  );
  // A model served by several deployments can also be compared across them: one target per deployment.
  clear(
    compareList,
    ctx.models.flatMap((m) => [
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "compare-model", value: m.id }), h("span", {}, m.display_name || m.id)),
      ...((m.deployments ?? []).length > 1
        ? m.deployments.map((d) =>
            h(
              "label",
              { class: "check via" },
              h("input", { type: "checkbox", name: "compare-model", value: `${m.id}@${d.name}` }),
              h("span", {}, `via ${d.name}`),
            ),
          )
        : []),
    ]),
  );
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
  const targets = () => {
    if (!compare.checked) return [model()];
    const chosen = [...compareList.querySelectorAll("input:checked")].map((i) => targetOf(ctx.models, i.value)).filter(Boolean);
    return chosen.length ? chosen : [model()];
  };

  function renderResolutions() {
    const choices = model().resolutions ?? [];
    const previous = resolutionSelect.value;
    clear(
      resolutionSelect,
      choices.map((r) => h("option", { value: r.name }, `${r.name} · ${money(r.price_per_image)} per image`)),
    );
    const keep = choices.some((r) => r.name === previous) ? previous : model().default_resolution;
    if (keep) resolutionSelect.value = keep;
    $("#create-resolution-field").hidden = choices.length < 2;
  }

  function renderRatios() {
    const previous = form.elements.ratio?.value ?? "1:1";
    const sizes = sizesOf(model(), resolutionSelect.value);
    const options = [{ ratio: "", width: 1, height: 1, label: "Auto" }, ...sizes];
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

  function renderQuality() {
    $("#create-quality-field").hidden = formatSelect.value === "png";
  }

  function renderPrice() {
    const request = currentRequest();
    const chosen = targets();
    const q = quote(chosen, request.resolution, request.n, ctx.account());
    const each = chosen.length === 1 ? `${request.n} × ${money(unitPrice(chosen[0], request.resolution))} = ` : "";
    const parts = [`Price ${each}${money(q.total)}`];
    parts.push(q.balance === null ? "unmetered key" : `balance ${money(q.balance)}`);
    priceLine.textContent = parts.join(" · ");
    priceLine.classList.toggle("short", !q.affordable);
    generate.disabled = submitting || !q.affordable;
    generate.title = q.affordable ? "" : "This key's balance does not cover this request.";
    if (!q.affordable) {
      priceLine.textContent += " — not enough credit: ask for more, or make fewer or smaller images.";
    }
  }

  /** The diffusion knobs every chosen model takes (a comparison sends one request to each). */
  const knobs = () => {
    const lists = targets().map((m) => new Set(m.diffusion ?? []));
    return new Set([...(lists[0] ?? [])].filter((k) => lists.every((l) => l.has(k))));
  };

  function renderDiffusion() {
    const taken = knobs();
    $("#create-steps-field").hidden = !taken.has("steps");
    $("#create-guidance-field").hidden = !taken.has("guidance");
    $("#create-negative-field").hidden = !taken.has("negative_prompt");
    $("#create-diffusion-hint").hidden = taken.size === 0;
    const most = Math.min(...targets().map((m) => m.max_steps ?? Infinity));
    if (Number.isFinite(most)) stepsInput.max = String(most);
    else stepsInput.removeAttribute("max");
  }

  function modelChanged() {
    renderResolutions();
    renderRatios();
    renderDiffusion();
    tray.setLimit(Math.min(...targets().map((m) => m.max_input_images)));
    renderPrice();
  }

  modelSelect.addEventListener("change", modelChanged);
  compare.addEventListener("change", () => {
    compareList.hidden = !compare.checked;
    modelChanged();
  });
  compareList.addEventListener("change", modelChanged);
  resolutionSelect.addEventListener("change", () => {
    renderRatios();
    renderPrice();
  });
  formatSelect.addEventListener("change", renderQuality);
  form.addEventListener("change", (event) => {
    if (event.target.name === "count" || event.target.name === "ratio") renderPrice();
  });
  renderResolutions();
  renderRatios();
  renderQuality();
  renderDiffusion();
  tray.setLimit(model().max_input_images);
  renderPrice();

  function currentRequest() {
    const ratio = form.elements.ratio?.value ?? "";
    const resolution = resolutionSelect.value || model().default_resolution || null;
    const shape = sizesOf(model(), resolution).find((r) => r.ratio === ratio);
    return {
      model: model().id,
      prompt: prompt.value.trim(),
      aspectRatio: ratio || null,
      resolution,
      defaultResolution: model().default_resolution ?? null,
      size: shape ? `${shape.width}x${shape.height}` : null,
      n: Number(form.elements.count?.value ?? 1),
      inputs: tray.items.length,
      format: formatSelect.value,
      quality: formatSelect.value === "png" || !quality.value ? null : Number(quality.value),
      seed: seedInput.value.trim() === "" ? null : Number(seedInput.value),
      // only the knobs shown (taken by the chosen models' deployments) are sent
      steps: shownNumber(stepsInput),
      guidance: shownNumber(guidanceInput),
      negativePrompt: $("#create-negative-field").hidden ? null : negativeInput.value.trim() || null,
    };
  }

  function shownNumber(input) {
    return input.closest(".field").hidden || input.value.trim() === "" ? null : Number(input.value);
  }

  function setRequest(asked) {
    if (ctx.models.some((m) => m.id === asked.model)) modelSelect.value = asked.model;
    compare.checked = false;
    compareList.hidden = true;
    modelChanged();
    if (asked.resolution && [...resolutionSelect.options].some((o) => o.value === asked.resolution)) {
      resolutionSelect.value = asked.resolution;
      renderRatios();
    }
    const ratio = form.querySelector(`input[name=ratio][value="${CSS.escape(asked.aspectRatio ?? "")}"]`);
    if (ratio) ratio.checked = true;
    const count = form.querySelector(`input[name=count][value="${Math.min(asked.n ?? 1, MAX_COUNT)}"]`);
    if (count) count.checked = true;
    prompt.value = asked.prompt ?? "";
    if (asked.format) formatSelect.value = asked.format;
    seedInput.value = asked.seed ?? "";
    stepsInput.value = asked.steps ?? "";
    guidanceInput.value = asked.guidance ?? "";
    negativeInput.value = asked.negativePrompt ?? "";
    renderQuality();
    renderPrice();
  }

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submitting) return; // a double click, or Enter while the first request is on its way
    const request = currentRequest();
    if (!request.prompt) {
      error.textContent = "Write a prompt first.";
      prompt.focus();
      return;
    }
    const chosen = targets();
    if (!quote(chosen, request.resolution, request.n, ctx.account()).affordable) {
      error.textContent = "This key's balance does not cover this request.";
      return;
    }
    error.textContent = "";
    submitting = true;
    renderPrice();
    try {
      const images = await Promise.all(
        tray.items.map(async (item) => `data:${item.blob.type};base64,${await blobToBase64(item.blob)}`),
      );
      await run(request, images, chosen);
    } finally {
      submitting = false;
      renderPrice();
    }
  });

  for (const button of form.querySelectorAll("[data-snippet]")) {
    button.addEventListener("click", () => {
      const request = currentRequest();
      if (!request.prompt) request.prompt = prompt.placeholder;
      request.inputNames = tray.items.map((item) => item.name);
      showSnippet(button.dataset.snippet, request);
    });
  }

  $("#preset-save").addEventListener("click", async () => {
    const name = window.prompt("Name this preset (model, shape, resolution, count, format, seed and steps):")?.trim();
    if (!name) return;
    try {
      await savePreset(name, { ...currentRequest(), prompt: undefined, inputs: undefined });
      await renderPresets(name);
      toast(`Saved preset “${name}”.`);
    } catch (failure) {
      toast(`The preset was not saved: ${failure.message}`);
    }
  });
  $("#preset-delete").addEventListener("click", async () => {
    const name = $("#preset-list").value;
    if (!name) return;
    try {
      await deletePreset(name);
      await renderPresets();
      toast(`Deleted preset “${name}”.`);
    } catch (failure) {
      toast(`The preset was not deleted: ${failure.message}`);
    }
  });
  $("#preset-list").addEventListener("change", async (event) => {
    $("#preset-delete").disabled = !event.target.value;
    const preset = (await loadPresets())[event.target.value];
    if (preset) setRequest({ ...preset, model: preset.model ?? model().id, prompt: prompt.value });
  });

  async function renderPresets(selected = "") {
    let presets;
    try {
      presets = await loadPresets();
    } catch (failure) {
      toast(`Your presets could not be loaded: ${failure.message}`);
      presets = {};
    }
    const names = Object.keys(presets).sort((a, b) => a.localeCompare(b));
    clear(
      $("#preset-list"),
      h("option", { value: "" }, names.length ? "Apply a preset…" : "No presets yet"),
      names.map((name) => h("option", { value: name }, name)),
    );
    $("#preset-list").value = names.includes(selected) ? selected : "";
    $("#preset-delete").disabled = !$("#preset-list").value;
  }
  renderPresets();

  function showSnippet(kind, request) {
    const snippet = SNIPPETS[kind];
    $("#snippet-title").textContent = `Copy as ${snippet.title}`;
    $("#snippet-code").textContent = snippet.make(request, location.origin);
    $("#snippet").showModal();
  }

  function bodyFor(request, target, images) {
    const body = { model: target.id, prompt: request.prompt, n: request.n, response_format: "url" };
    if (target.via) body.provider = target.via; // that deployment only (AIML's provider field)
    if (request.aspectRatio) body.aspect_ratio = request.aspectRatio;
    // The resolution by name ("2K") beside the ratio: both unambiguous, for every model of a comparison.
    if (request.resolution && request.resolution !== request.defaultResolution) body.size = request.resolution;
    if (request.format && request.format !== "png") body.output_format = request.format;
    if (request.quality !== null && request.quality !== undefined) body.output_compression = request.quality;
    if (request.seed !== null && request.seed !== undefined) body.seed = request.seed;
    if (request.steps !== null && request.steps !== undefined) body.num_inference_steps = request.steps;
    if (request.guidance !== null && request.guidance !== undefined) body.guidance_scale = request.guidance;
    if (request.negativePrompt) body.negative_prompt = request.negativePrompt;
    if (images.length) body.images = images;
    return body;
  }

  async function run(request, images, chosen) {
    $("#results-empty")?.remove();
    const groups = chosen.map((m) => ({ model: m, cards: Array.from({ length: request.n }, () => resultCard(request, m)) }));
    const section = runSection(request, groups, chosen.length > 1);
    results.prepend(section);
    const path = images.length ? "/v1/async/images/edits" : "/v1/async/images/generations";
    const tasks = await Promise.all(
      groups.map(async (group) => {
        try {
          return await api(path, { method: "POST", body: bodyFor(request, group.model, images) });
        } catch (failure) {
          group.cards.forEach((card) => card.fail(failure.message, failure.code));
          return null;
        }
      }),
    );
    const started = tasks.filter(Boolean);
    if (started.length) {
      api("/v1/playground/runs", {
        method: "POST",
        body: {
          title: request.prompt.slice(0, 120),
          doc: {
            prompt: request.prompt,
            model: request.model,
            params: {
              n: request.n,
              aspect_ratio: request.aspectRatio,
              resolution: request.resolution,
              format: request.format,
              quality: request.quality,
              seed: request.seed,
              steps: request.steps,
              guidance: request.guidance,
              negative_prompt: request.negativePrompt,
            },
            job_ids: started.map((t) => t.id),
            targets: chosen.length > 1 ? chosen.map((m) => m.key ?? m.id) : [],
          },
        },
      }).catch((failure) => toast(`This run was not saved in your history: ${failure.message}`));
    }
    await Promise.all(
      groups.map(async (group, i) => {
        if (!tasks[i]) return;
        try {
          await followTask(tasks[i], (task) => updateGroup(group, task));
        } catch (failure) {
          group.cards.forEach((card) => card.fail(failure.message));
        }
      }),
    );
    ctx.changed();
  }

  function runSection(request, groups, comparing) {
    const meta = [
      request.aspectRatio || "auto shape",
      request.resolution,
      `${request.n} image${request.n > 1 ? "s" : ""}`,
      comparing ? `compare ${groups.length} models` : groups[0].model.id,
    ].filter(Boolean);
    return h(
      "section",
      { class: comparing ? "run compare" : "run", "aria-label": `Results for ${request.prompt}` },
      h("header", { class: "run-head" }, h("p", { class: "run-prompt" }, request.prompt), h("p", { class: "small muted" }, meta.join(" · "))),
      groups.map((group) =>
        h(
          "div",
          { class: "run-model" },
          comparing ? h("p", { class: "small run-model-name" }, group.model.display_name || group.model.id) : null,
          h("div", { class: "run-grid" }, group.cards.map((c) => c.element)),
        ),
      ),
    );
  }

  function updateGroup(group, task) {
    if (task.status === "succeeded") {
      const data = task.result?.data ?? [];
      group.cards.forEach((card, i) => {
        if (data[i]?.url) card.show(task, data[i], i);
        else card.fail("This image was not made (refused or failed); it was not charged.", "partial");
      });
      group.cards.forEach((card) => card.facts(task));
      return;
    }
    if (task.status === "failed" || task.status === "cancelled") {
      group.cards.forEach((card) => {
        card.fail(task.error?.message ?? `The task ${task.status}.`, task.error?.code);
        card.facts(task);
      });
      return;
    }
    group.cards.forEach((card) => card.progress(task));
  }

  function resultCard(request, target) {
    const sizes = sizesOf(target, request.resolution);
    const shape = sizes.find((r) => r.ratio === request.aspectRatio);
    const label = h("span", { class: "card-status" }, "Queued");
    const bar = h("progress", { max: "100", "aria-label": "Progress" });
    const frame = h("div", { class: "frame pending" }, h("div", { class: "frame-overlay" }, label, bar));
    // With no ratio asked, the frame takes the image's own shape once it is known: nothing is cropped.
    if (shape) frame.style.setProperty("--ar", `${shape.width} / ${shape.height}`);
    else frame.classList.add("auto");
    const facts = h("p", { class: "card-facts small muted" });
    const actions = h("div", { class: "card-actions" });
    const element = h("article", { class: "result card", "aria-busy": "true" }, frame, facts, actions);

    function fail(message, code) {
      element.removeAttribute("aria-busy");
      frame.classList.remove("pending", "auto");
      const refused = code === "moderation_blocked" || code === "partial";
      frame.classList.add(refused ? "refused" : "failed");
      const retry =
        !refused && (RETRYABLE.has(code) || !code)
          ? h("button", { type: "button", class: "small", onclick: () => retryRun() }, "Retry")
          : null;
      clear(
        frame,
        h(
          "div",
          { class: "frame-overlay" },
          h("strong", {}, refused ? "Refused — no image" : "Failed — no image"),
          h("p", {}, message),
          h("p", { class: "small" }, refused ? "Nothing was charged. Rephrase the prompt and try again." : "Nothing was charged."),
          retry,
        ),
      );
    }

    function retryRun() {
      setRequest({ ...request, model: target.id });
      form.requestSubmit();
    }

    function progress(task) {
      label.textContent = task.status === "running" ? "Generating…" : "Queued";
      if (task.progress) {
        bar.value = task.progress.percent;
        label.textContent = `Generating… ${task.progress.done}/${task.progress.total}`;
      }
    }

    function show(task, item, index) {
      const name = fileName(`${task.id}-${index + 1}`, `image/${task.result?.output_format ?? "png"}`);
      const image = h("img", { src: item.url, alt: request.prompt, loading: "lazy" });
      image.addEventListener("load", () => {
        frame.classList.remove("pending");
        if (frame.classList.contains("auto")) {
          frame.style.setProperty("--ar", `${image.naturalWidth} / ${image.naturalHeight}`);
          frame.classList.remove("auto");
        }
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
        h("button", { type: "button", class: "ghost small", onclick: () => showLightbox(item.url, request.prompt, name) }, "Open"),
        downloadLink(item.url, name),
        h("button", { type: "button", class: "ghost small", onclick: () => reuse((blob, n) => ctx.editInThread(blob, n)) }, "Edit in thread"),
        h(
          "button",
          { type: "button", class: "ghost small", onclick: () => reuse((blob, n) => tray.add(blob, n) && toast("Added as an input image.")) },
          "Use as input",
        ),
      );
    }

    function showFacts(task) {
      const provider = task.deployment ?? (task.attempt_trail?.length ? task.attempt_trail.at(-1).deployment : null);
      facts.textContent = [money(task.cost), provider ? `by ${provider}` : null].filter(Boolean).join(" · ");
    }

    return { element, update: () => {}, fail, show, progress, facts: showFacts };
  }

  /** The latest runs from the server, so a reload (or another browser) shows what this key made. */
  async function restore() {
    let runs;
    try {
      runs = (await api("/v1/playground/runs?limit=8")).data;
    } catch (failure) {
      toast(`Your recent runs could not be loaded: ${failure.message}`);
      return;
    }
    if (!runs.length) return;
    $("#results-empty")?.remove();
    // Below anything made since the page opened: the saved runs are older, newest first.
    for (const saved of runs) {
      const request = {
        prompt: saved.prompt,
        model: saved.model,
        aspectRatio: saved.params?.aspect_ratio ?? null,
        resolution: saved.params?.resolution ?? null,
        n: saved.params?.n ?? 1,
        format: saved.params?.format ?? "png",
        seed: saved.params?.seed ?? null,
        steps: saved.params?.steps ?? null,
        guidance: saved.params?.guidance ?? null,
        negativePrompt: saved.params?.negative_prompt ?? null,
      };
      const chosen = (saved.targets?.length ? saved.targets : [saved.model]).map(
        (id) => targetOf(ctx.models, id) ?? { id, aspect_ratios: [], max_input_images: 0 },
      );
      const groups = chosen.map((m) => ({ model: m, cards: Array.from({ length: request.n }, () => resultCard(request, m)) }));
      results.append(runSection(request, groups, chosen.length > 1));
      saved.job_ids.forEach(async (id, i) => {
        if (!groups[i]) return;
        try {
          const task = await api(`/v1/tasks/${encodeURIComponent(id)}`);
          await followTask(task, (t) => updateGroup(groups[i], t));
        } catch (failure) {
          groups[i].cards.forEach((card) => card.fail(failure.message, "gone"));
        }
      });
    }
  }
  restore();

  return {
    addInput: (blob, name) => tray.add(blob, name),
    refreshPrice: renderPrice,
    /** Fill the form with what a stored job asked (from the gallery), its input images included. */
    async reopen(asked, blobs) {
      tray.take();
      for (const [blob, name] of blobs) tray.add(blob, name);
      setRequest(asked);
      prompt.focus();
    },
    rerun() {
      form.requestSubmit();
    },
    showSnippet,
  };
}
