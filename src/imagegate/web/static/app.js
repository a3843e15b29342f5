// The playground's entry point: sign-in with an API key, the models, the four views and hash navigation.

import { api, ApiError, session } from "./api.js";
import { initAdmin } from "./admin.js";
import { initCreate } from "./create.js";
import { initDashboard } from "./dashboard.js";
import { initGallery } from "./gallery.js";
import { initThread } from "./thread.js";
import { $, money, toast } from "./ui.js";

const VIEWS = ["create", "thread", "gallery", "dashboard", "admin"];
let views = null;
let account = null;

function show(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (!views) return;
  let name = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "create";
  if (name === "admin" && !views.admin) name = "create";
  show(name);
  if (name === "gallery") views.gallery.refresh();
  if (name === "dashboard") views.dashboard.refresh();
  if (name === "admin" && views.admin) views.admin.refresh();
}

function showAccount(found) {
  account = found;
  $("#who-name").textContent = found.name;
  $("#who-balance").textContent = found.metered ? `${money(found.balance)} credits` : "unmetered";
  views?.create?.refreshPrice();
}

async function refreshAccount() {
  try {
    showAccount(await api("/v1/account"));
  } catch {
    // The chip keeps its last figure; the dashboard reports errors where they matter.
  }
}

/** Whenever a model is served by the built-in emulator, say so on every view: its images are not the model's. */
async function showEmulatorBanner() {
  try {
    const fleet = (await api("/v1/providers")).data;
    const emulated = fleet.filter((d) => d.provider === "emulator");
    const banner = $("#emulator-banner");
    banner.hidden = !emulated.length;
    if (emulated.length) {
      const names = emulated.map((d) => d.name).join(", ");
      const served = emulated.some((d) => d.models.includes("*")) ? "every model" : emulated.flatMap((d) => d.models).join(", ");
      banner.textContent = `Emulator: ${served} ${emulated.length > 1 ? "are" : "is"} served by the built-in emulator (${names}) — stand-in images, not the real model's. Configure an upstream for real images.`;
    }
  } catch {
    // No fleet figures (an older server): nothing to say.
  }
}

async function start(found) {
  showAccount(found);
  $(".who").hidden = false;
  $('.tabs a[data-view="admin"]').hidden = !found.admin;
  const models = (await api("/v1/playground/models")).data;
  showEmulatorBanner();
  const ctx = {
    models,
    account: () => account,
    model: () => models.find((m) => m.id === $("#create-model").value) ?? models[0],
    changed: refreshAccount,
    reopen: async (asked, inputs) => {
      location.hash = "#create";
      await views.create.reopen(asked, inputs);
    },
    rerun: () => views.create.rerun(),
    snippet: (request) => views.create.showSnippet("curl", request),
    openInThread: async (asked, task, inputs) => {
      location.hash = "#thread";
      await views.thread.openJob(asked, task, inputs);
    },
    editInThread: (blob, name) => {
      views.thread.start(blob, name);
      location.hash = "#thread";
    },
    useAsInput: (blob, name) => {
      if (views.create.addInput(blob, name)) toast("Added to Create as an input image.");
      location.hash = "#create";
    },
  };
  views = {};
  views.create = initCreate(ctx);
  views.thread = initThread(ctx);
  views.gallery = initGallery(ctx);
  views.dashboard = initDashboard();
  views.admin = found.admin ? initAdmin() : null;
  route();
  // Only now: a tab shown before its view is built would take a click (or a dropped file) and do nothing.
  $(".tabs").hidden = false;
}

function signInError(error) {
  if (error instanceof ApiError && (error.badKey || error.status === 400 || error.status === 403)) {
    return `This key was not accepted: ${error.message}`;
  }
  return error.message;
}

async function signIn(event) {
  event.preventDefault();
  const input = $("#key-input");
  const message = $("#signin-error");
  const key = input.value.trim();
  if (!key) {
    message.textContent = "Enter your API key. It starts with ig_.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  const button = $("#signin-submit");
  button.disabled = true;
  try {
    const account = await api("/v1/account", { key });
    session.key = key;
    input.value = "";
    input.removeAttribute("aria-invalid");
    message.textContent = "";
    await start(account);
    $("#main").focus();
  } catch (error) {
    message.textContent = signInError(error);
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  session.key = "";
  location.hash = "";
  location.reload();
}

async function boot() {
  $("#signin-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  $("#snippet-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("#snippet-code").textContent);
      toast("Copied.");
    } catch {
      toast("The browser did not allow copying; select the text and copy it.");
    }
  });
  for (const dialog of document.querySelectorAll("dialog")) {
    // A click on the backdrop (the dialog element itself, outside its content) closes it.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
  }
  window.addEventListener("hashchange", route);
  if (session.key) {
    try {
      await start(await api("/v1/account"));
      return;
    } catch (error) {
      session.key = "";
      $("#signin-error").textContent =
        error instanceof ApiError && error.badKey ? "Your saved key is no longer accepted; sign in again." : error.message;
    }
  }
  show("signin");
  $("#key-input").focus();
}

boot();
