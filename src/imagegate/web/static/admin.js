// The Admin view (admin keys only): create keys (shown once), revoke them, grant credits, usage per key and
// model with the keys' names, and CSV exports of usage and of the ledger (GET /v1/admin/…).

import { api, apiBlob } from "./api.js";
import { $, clear, h, money, toast, when } from "./ui.js";

export function initAdmin() {
  const error = $("#admin-error");
  const form = $("#admin-create");

  async function download(path, filename) {
    try {
      const blob = await apiBlob(path);
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: filename });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (failure) {
      error.textContent = `The export failed: ${failure.message}`;
    }
  }

  function keyRow(key) {
    const grant = async () => {
      const amount = window.prompt(`Credits to add to ${key.name}:`, "10");
      if (!amount) return;
      try {
        const done = await api(`/v1/admin/keys/${encodeURIComponent(key.id)}/credits`, { method: "POST", body: { amount } });
        toast(`${key.name}: balance ${money(done.balance)}.`);
        refresh();
      } catch (failure) {
        error.textContent = failure.message;
      }
    };
    const revoke = async () => {
      if (!window.confirm(`Revoke ${key.name}? Requests with it are refused from now on.`)) return;
      try {
        await api(`/v1/admin/keys/${encodeURIComponent(key.id)}/revoke`, { method: "POST" });
        toast(`Revoked ${key.name}.`);
        refresh();
      } catch (failure) {
        error.textContent = failure.message;
      }
    };
    const revoked = key.revoked_at !== null;
    return h(
      "tr",
      { class: revoked ? "revoked" : null },
      h("th", { scope: "row" }, key.name, key.admin ? h("span", { class: "badge" }, "admin") : null),
      h("td", { dataset: { label: "Key" } }, h("code", {}, `${key.prefix}…`)),
      h("td", { dataset: { label: "Balance" } }, key.metered ? money(key.balance) : "unmetered"),
      h("td", { dataset: { label: "Created" } }, when(key.created_at)),
      h("td", { dataset: { label: "State" } }, revoked ? `revoked ${when(key.revoked_at)}` : "active"),
      h(
        "td",
        { class: "row-actions" },
        revoked ? null : h("button", { type: "button", class: "ghost small", onclick: grant }, "Grant credits"),
        revoked ? null : h("button", { type: "button", class: "ghost small danger", onclick: revoke }, "Revoke"),
      ),
    );
  }

  async function refresh() {
    error.textContent = "";
    const [keys, usage] = await Promise.allSettled([api("/v1/admin/keys"), api("/v1/usage?days=30")]);
    if (keys.status === "fulfilled") {
      clear(
        $("#admin-keys"),
        h(
          "table",
          { class: "fleet" },
          h("thead", {}, h("tr", {}, ["Name", "Key", "Balance", "Created", "State", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, keys.value.data.map(keyRow)),
        ),
      );
    } else error.textContent = keys.reason.message;
    if (usage.status === "fulfilled") {
      const totals = new Map();
      for (const row of usage.value.data) {
        const id = `${row.key_id}\u0000${row.model}`;
        const sum = totals.get(id) ?? { name: row.key_name ?? row.key_id, model: row.model, requests: 0, images: 0, spend: 0 };
        sum.requests += row.requests;
        sum.images += row.images;
        sum.spend += Number(row.spend);
        totals.set(id, sum);
      }
      const rows = [...totals.values()].sort((a, b) => b.spend - a.spend);
      clear(
        $("#admin-usage"),
        rows.length
          ? h(
              "table",
              { class: "fleet" },
              h("thead", {}, h("tr", {}, ["Key", "Model", "Requests", "Images", "Spend"].map((t) => h("th", { scope: "col" }, t)))),
              h(
                "tbody",
                {},
                rows.map((r) =>
                  h(
                    "tr",
                    {},
                    h("th", { scope: "row" }, r.name),
                    h("td", { dataset: { label: "Model" } }, r.model),
                    h("td", { dataset: { label: "Requests" } }, String(r.requests)),
                    h("td", { dataset: { label: "Images" } }, String(r.images)),
                    h("td", { dataset: { label: "Spend" } }, money(r.spend)),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted pad" }, "No settled requests in the last 30 days."),
      );
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("#new-key-name").value.trim();
    if (!name) {
      error.textContent = "Give the key a name.";
      return;
    }
    const body = { name, admin: $("#new-key-admin").checked };
    const credits = $("#new-key-credits").value.trim();
    if (credits) body.credits = credits;
    try {
      const created = await api("/v1/admin/keys", { method: "POST", body });
      clear($("#new-key-shown"), "Copy it now; it is not shown again: ", h("code", {}, created.key));
      form.reset();
      refresh();
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  $("#export-usage").addEventListener("click", (event) => {
    event.preventDefault();
    download("/v1/admin/usage.csv?days=30", "imagegate-usage-30d.csv");
  });
  $("#export-ledger").addEventListener("click", (event) => {
    event.preventDefault();
    download("/v1/admin/ledger.csv?days=30", "imagegate-ledger-30d.csv");
  });
  return { refresh };
}
