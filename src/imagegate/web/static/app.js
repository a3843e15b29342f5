// The playground's entry point: sign-in with an API key, the models, the four views and hash navigation.

import { api, ApiError, session } from "./api.js";
import { initCreate } from "./create.js";
import { initDashboard } from "./dashboard.js";
import { initGallery } from "./gallery.js";
import { initThread } from "./thread.js";
import { $, money, toast } from "./ui.js";

const VIEWS = ["create", "thread", "gallery", "dashboard"];
let views = null;

function show(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (!views) return;
  const name = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "create";
  show(name);
  if (name === "gallery") views.gallery.refresh();
  if (name === "dashboard") views.dashboard.refresh();
}

function showAccount(account) {
  $("#who-name").textContent = account.name;
  $("#who-balance").textContent = account.metered ? `${money(account.balance)} credits` : "unmetered";
}

async function refreshAccount() {
  try {
    showAccount(await api("/v1/account"));
  } catch {
    // The chip keeps its last figure; the dashboard reports errors where they matter.
  }
}

async function start(account) {
  showAccount(account);
  $(".tabs").hidden = false;
  $(".who").hidden = false;
  const models = (await api("/v1/playground/models")).data;
  const ctx = {
    models,
    model: () => models.find((m) => m.id === $("#create-model").value) ?? models[0],
    changed: refreshAccount,
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
  views.gallery = initGallery();
  views.dashboard = initDashboard();
  route();
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
