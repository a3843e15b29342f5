// The Thread view: multi-turn editing over Gemini's generateContent. Every request sends the whole conversation
// (model turns with their images), so each answer builds on the last; any answer can start a new branch.
// Threads are kept on the server (/v1/playground/threads): their turns name the jobs that answered and the stored
// input images, so a thread reopens after a reload or in another browser exactly as it was.

import { api, apiBlob, base64ToBlob, blobToBase64, imageBlob } from "./api.js";
import { Tray } from "./inputs.js";
import { $, clear, downloadLink, fileName, h, showLightbox, toast } from "./ui.js";

function newThread(title, turns = [], extra = {}) {
  return { id: null, title, turns, loaded: true, ...extra };
}

async function base64Of(image) {
  if (image.base64) return image.base64;
  image.blob ??= await imageBlob(image.url);
  image.base64 = await blobToBase64(image.blob);
  return image.base64;
}

async function partsOf(turn) {
  const parts = turn.text ? [{ text: turn.text }] : [];
  for (const image of turn.images) {
    const data = await base64Of(image);
    parts.push({ inlineData: { mimeType: image.blob?.type || image.mime || "image/png", data } });
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
    return { images: [], text: "", error: `The prompt was blocked (${reason}).`, refused: true, jobId: data?.responseId };
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
  return { images, text, error, refused: !images.length, jobId: data.responseId };
}

/** A thread as the server stores it: text, references to stored inputs, and the jobs that answered. */
function serialise(thread) {
  return {
    title: thread.title.slice(0, 200),
    doc: {
      turns: thread.turns
        .filter((t) => !t.pending)
        .map((t) =>
          t.role === "user"
            ? { role: "user", text: t.text, inputs: t.images.map((i) => i.ref).filter(Boolean) }
            : { role: "model", text: t.text ?? "", job_id: t.jobId ?? null, error: t.error ?? null },
        ),
      parent_id: thread.parentId ?? null,
      branch_turn: thread.branchTurn ?? null,
    },
  };
}

export function initThread(ctx) {
  const list = $("#thread-list");
  const turnsList = $("#turns");
  const composer = $("#composer");
  const text = $("#composer-text");
  const ratio = $("#composer-ratio");
  const error = $("#composer-error");
  const tray = new Tray($("#composer-inputs"), { dropTarget: composer, limit: ctx.model().max_input_images });
  const threads = [];
  let active = null;

  clear(
    ratio,
    h("option", { value: "" }, "Auto"),
    ctx.model().aspect_ratios.map((r) => h("option", { value: r.ratio }, r.ratio)),
  );

  async function save(thread) {
    try {
      const body = serialise(thread);
      const saved = thread.id
        ? await api(`/v1/playground/threads/${encodeURIComponent(thread.id)}`, { method: "PUT", body })
        : await api("/v1/playground/threads", { method: "POST", body });
      thread.id = saved.id;
    } catch (failure) {
      toast(`This thread was not saved on the server: ${failure.message}`);
    }
  }

  /** Turn a stored thread into turns with images: model images from their jobs, inputs from the store. */
  async function load(thread) {
    if (thread.loaded) return;
    thread.loaded = true;
    const turns = [];
    for (const stored of thread.stored.turns) {
      if (stored.role === "user") {
        const images = await Promise.all(
          stored.inputs.map(async (ref) => {
            try {
              const blob = await apiBlob(`/v1/playground/jobs/${encodeURIComponent(ref.job_id)}/inputs/${ref.sha256}`);
              return { blob, url: URL.createObjectURL(blob), ref };
            } catch {
              return null;
            }
          }),
        );
        turns.push({ role: "user", text: stored.text, images: images.filter(Boolean) });
        continue;
      }
      const turn = { role: "model", text: stored.text, images: [], jobId: stored.job_id, error: stored.error };
      if (stored.job_id && !stored.error) {
        try {
          const task = await api(`/v1/tasks/${encodeURIComponent(stored.job_id)}`);
          turn.images = (task.result?.data ?? []).filter((d) => d.url).map((d) => ({ url: d.url, mime: "image/png" }));
          if (!turn.images.length) turn.error = task.error?.message ?? "This answer has no image any more.";
        } catch (failure) {
          turn.error = `This answer could not be loaded: ${failure.message}`;
        }
      }
      turns.push(turn);
    }
    thread.turns = turns;
  }

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
            h("span", { class: "small muted" }, `${thread.loaded ? thread.turns.length : thread.stored.turns.length} turns`),
          ),
        ),
      ),
    );
  }

  async function select(thread) {
    active = thread;
    renderList();
    if (!thread.loaded) {
      clear(turnsList, h("li", { class: "empty" }, h("p", { class: "muted" }, "Loading the thread…")));
      await load(thread);
    }
    if (active === thread) render();
    text.focus();
  }

  function branch(index) {
    const source = active;
    const copy = newThread(`Branch of ${source.title} at turn ${index + 1}`, source.turns.slice(0, index + 1), {
      parentId: source.id,
      branchTurn: index,
    });
    threads.unshift(copy);
    select(copy);
    save(copy);
    toast("Branched: new turns go to the branch; the original stays as it was.");
  }

  function imageActions(image, caption, id) {
    const name = fileName(id, image.blob?.type || image.mime);
    const use = async () => {
      try {
        image.blob ??= await imageBlob(image.url);
        ctx.useAsInput(image.blob, name);
      } catch (failure) {
        toast(failure.message);
      }
    };
    return [
      h("button", { type: "button", class: "ghost small", onclick: () => showLightbox(image.url, caption, name) }, "Open"),
      downloadLink(image.url, name),
      h("button", { type: "button", class: "ghost small", onclick: use }, "Use in Create"),
    ];
  }

  function renderTurn(turn, index) {
    if (turn.role === "user") {
      return h(
        "li",
        { class: "turn user" },
        h("span", { class: "who-label" }, "You"),
        turn.images.length
          ? h("div", { class: "turn-inputs" }, turn.images.map((img, i) => h("img", { src: img.url, alt: `Your image ${i + 1}` })))
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
        h("p", { class: turn.refused ? "error refused" : "error" }, turn.error),
        h("button", { type: "button", class: "ghost small", onclick: () => respond(active, index) }, "Retry"),
      );
    }
    if (!turn.pending && !turn.error) {
      body.push(h("button", { type: "button", class: "ghost small branch", onclick: () => branch(index) }, "Branch from here"));
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

  /** Which stored inputs the job just made holds for the user turn it answered (same order as sent). */
  async function referenceInputs(turn, jobId) {
    if (!jobId || !turn.images.length) return;
    try {
      const asked = await api(`/v1/playground/jobs/${encodeURIComponent(jobId)}`);
      asked.inputs.forEach((ref, i) => {
        if (turn.images[i]) turn.images[i].ref = ref;
      });
    } catch {
      // Unreferenced inputs are left out of the saved thread; the live page still has them.
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
      await referenceInputs(thread.turns[index - 1], thread.turns[index].jobId);
    } catch (failure) {
      thread.turns[index] = { role: "model", images: [], text: "", error: failure.message };
    }
    ctx.changed();
    if (thread === active) render();
    await save(thread);
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
    if (!thread.turns.length && message) thread.title = message.slice(0, 60);
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
    threads.unshift(thread);
    select(thread);
  });

  async function restore() {
    try {
      const stored = (await api("/v1/playground/threads?limit=50")).data;
      for (const entry of stored) threads.push({ id: entry.id, title: entry.title, stored: entry, loaded: false, turns: [] });
    } catch (failure) {
      toast(`Your threads could not be loaded: ${failure.message}`);
    }
    if (!threads.length) threads.push(newThread("Thread 1"));
    if (!active) await select(threads[0]);
  }
  const ready = restore();

  return {
    /** A fresh thread with ``blob`` waiting in the composer, as the first image to edit. */
    async start(blob, name) {
      await ready;
      let thread = active;
      if (thread.turns.length || !thread.loaded) {
        thread = newThread(`Thread ${threads.length + 1}`);
        threads.unshift(thread);
      }
      await select(thread);
      tray.add(blob, name);
    },
    /** A stored job opened as a thread: what was asked, and the answer, ready to edit further. */
    async openJob(asked, task, inputs) {
      await ready;
      const images = (task.result?.data ?? []).filter((d) => d.url).map((d) => ({ url: d.url, mime: "image/png" }));
      const user = { role: "user", text: asked.prompt, images: inputs.map(([blob], i) => ({ blob, url: URL.createObjectURL(blob), ref: asked.inputs[i] })) };
      const answer = { role: "model", text: "", images, jobId: task.id, error: images.length ? null : task.error?.message ?? "No image." };
      const thread = newThread(asked.prompt.slice(0, 60) || "Reopened job", [user, answer]);
      threads.unshift(thread);
      await select(thread);
      save(thread);
    },
  };
}
