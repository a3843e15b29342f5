// The Thread view: multi-turn editing over Gemini's generateContent. Every request sends the whole conversation
// (model turns with their images), so each answer builds on the last; any answer can start a new branch.

import { api, base64ToBlob, blobToBase64 } from "./api.js";
import { Tray } from "./inputs.js";
import { $, clear, downloadLink, fileName, h, showLightbox, toast } from "./ui.js";

let nextThread = 1;

function newThread(title, turns = []) {
  return { id: nextThread++, title, turns };
}

async function partsOf(turn) {
  const parts = turn.text ? [{ text: turn.text }] : [];
  for (const image of turn.images) {
    image.base64 ??= await blobToBase64(image.blob);
    parts.push({ inlineData: { mimeType: image.blob.type || "image/png", data: image.base64 } });
  }
  return parts;
}

/** The conversation so far, without exchanges that failed (they taught the model nothing). */
async function contentsOf(turns) {
  const kept = [];
  for (let i = 0; i < turns.length; i += 1) {
    const turn = turns[i];
    const answer = turns[i + 1];
    if (turn.role === "user" && answer && (answer.error || answer.pending)) {
      i += 1;
      continue;
    }
    kept.push({ role: turn.role, parts: await partsOf(turn) });
  }
  return kept;
}

function readAnswer(data) {
  const candidate = data?.candidates?.[0];
  if (!candidate) {
    const reason = data?.promptFeedback?.blockReason ?? "no candidates";
    return { images: [], text: "", error: `The prompt was blocked (${reason}).` };
  }
  const parts = candidate.content?.parts ?? [];
  const text = parts.filter((p) => p.text && !p.thought).map((p) => p.text).join("\n");
  const images = parts
    .filter((p) => p.inlineData)
    .map((p) => {
      const blob = base64ToBlob(p.inlineData.data, p.inlineData.mimeType);
      return { blob, url: URL.createObjectURL(blob), base64: p.inlineData.data };
    });
  const error = images.length
    ? null
    : `No image (${candidate.finishReason ?? "no reason given"}). ${candidate.finishMessage ?? ""}`.trim();
  return { images, text, error, jobId: data.responseId };
}

export function initThread(ctx) {
  const list = $("#thread-list");
  const turnsList = $("#turns");
  const composer = $("#composer");
  const text = $("#composer-text");
  const ratio = $("#composer-ratio");
  const error = $("#composer-error");
  const tray = new Tray($("#composer-inputs"), { dropTarget: composer, limit: ctx.model().max_input_images });
  const threads = [newThread("Thread 1")];
  let active = threads[0];

  clear(
    ratio,
    h("option", { value: "" }, "Auto"),
    ctx.model().aspect_ratios.map((r) => h("option", { value: r.ratio }, r.ratio)),
  );

  function renderList() {
    clear(
      list,
      threads.map((thread) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "thread-item",
              "aria-current": thread === active ? "true" : null,
              onclick: () => select(thread),
            },
            h("span", {}, thread.title),
            h("span", { class: "small muted" }, `${thread.turns.length} turns`),
          ),
        ),
      ),
    );
  }

  function select(thread) {
    active = thread;
    render();
    text.focus();
  }

  function branch(index) {
    const source = active;
    const copy = newThread(`Branch of ${source.title} at turn ${index + 1}`, source.turns.slice(0, index + 1));
    threads.push(copy);
    select(copy);
    toast("Branched: new turns go to the branch; the original stays as it was.");
  }

  function imageActions(image, caption, id) {
    const name = fileName(id, image.blob.type);
    return [
      h("button", { type: "button", class: "ghost small", onclick: () => showLightbox(image.url, caption, name) }, "Open"),
      downloadLink(image.url, name),
      h(
        "button",
        { type: "button", class: "ghost small", onclick: () => ctx.useAsInput(image.blob, name) },
        "Use in Create",
      ),
    ];
  }

  function renderTurn(turn, index) {
    if (turn.role === "user") {
      return h(
        "li",
        { class: "turn user" },
        h("span", { class: "who-label" }, "You"),
        turn.images.length
          ? h(
              "div",
              { class: "turn-inputs" },
              turn.images.map((img, i) => h("img", { src: img.url, alt: `Your image ${i + 1}` })),
            )
          : null,
        turn.text ? h("p", {}, turn.text) : null,
      );
    }
    const caption = active.turns[index - 1]?.text || "Model image";
    const body = [];
    if (turn.pending) {
      body.push(h("p", { class: "muted" }, "Generating…"), h("progress", { "aria-label": "Generating" }));
    }
    for (const image of turn.images) {
      body.push(
        h(
          "button",
          {
            type: "button",
            class: "turn-image",
            "aria-label": "Open full size",
            onclick: () => showLightbox(image.url, caption, fileName(turn.jobId)),
          },
          h("img", { src: image.url, alt: caption }),
        ),
        h("div", { class: "card-actions" }, imageActions(image, caption, turn.jobId)),
      );
    }
    if (turn.text) body.push(h("p", { class: "small muted model-text" }, turn.text));
    if (turn.error) {
      body.push(
        h("p", { class: "error" }, turn.error),
        h("button", { type: "button", class: "ghost small", onclick: () => respond(active, index) }, "Retry"),
      );
    }
    if (!turn.pending && !turn.error) {
      body.push(
        h(
          "button",
          { type: "button", class: "ghost small branch", onclick: () => branch(index) },
          "Branch from here",
        ),
      );
    }
    return h("li", { class: "turn model" }, h("span", { class: "who-label" }, "Model"), body);
  }

  function render() {
    renderList();
    if (!active.turns.length) {
      clear(
        turnsList,
        h(
          "li",
          { class: "empty" },
          h("h2", {}, "Edit in conversation"),
          h("p", { class: "muted" }, "Start with a prompt or an image, then keep asking for changes."),
        ),
      );
    } else {
      clear(turnsList, active.turns.map(renderTurn));
    }
    // Keep the newest turn in sight, also once its images have loaded and grown the list.
    const toBottom = () => {
      turnsList.scrollTop = turnsList.scrollHeight;
    };
    toBottom();
    for (const image of turnsList.querySelectorAll("img")) {
      if (!image.complete) image.addEventListener("load", toBottom, { once: true });
    }
  }

  async function respond(thread, index) {
    thread.turns[index] = { role: "model", images: [], text: "", pending: true };
    if (thread === active) render();
    const model = ctx.model();
    const config = { responseModalities: ["TEXT", "IMAGE"] };
    const shape = ratio.value;
    if (shape) config.imageConfig = { aspectRatio: shape };
    try {
      const contents = await contentsOf(thread.turns.slice(0, index));
      const data = await api(`/v1beta/models/${encodeURIComponent(model.id)}:generateContent`, {
        method: "POST",
        body: { contents, generationConfig: config },
      });
      thread.turns[index] = { role: "model", ...readAnswer(data) };
    } catch (failure) {
      thread.turns[index] = { role: "model", images: [], text: "", error: failure.message };
    }
    ctx.changed();
    if (thread === active) render();
  }

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = text.value.trim();
    if (!message && !tray.items.length) {
      error.textContent = "Write a message or add an image.";
      text.focus();
      return;
    }
    error.textContent = "";
    const images = tray.take().map((item) => ({ blob: item.blob, url: item.url }));
    const thread = active;
    thread.turns.push({ role: "user", text: message, images });
    text.value = "";
    await respond(thread, thread.turns.length);
  });

  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });

  $("#new-thread").addEventListener("click", () => {
    const thread = newThread(`Thread ${threads.length + 1}`);
    threads.push(thread);
    select(thread);
  });

  render();

  return {
    /** A fresh thread with ``blob`` waiting in the composer, as the first image to edit. */
    start(blob, name) {
      let thread = active;
      if (thread.turns.length) {
        thread = newThread(`Thread ${threads.length + 1}`);
        threads.push(thread);
      }
      select(thread);
      tray.add(blob, name);
    },
  };
}
