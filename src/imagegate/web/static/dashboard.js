// The Dashboard view: balance and holds (GET /v1/account), spend and images per day for 30 days (GET /v1/usage,
// summed over models), and each deployment's health over the chosen window (GET /v1/providers): a word and colour
// from the same figures, success rate, refusals, errors, p50/p95 latency and time to first byte.

import { api, ApiError } from "./api.js";
import { barChart } from "./charts.js";
import { $, clear, duration, h, money, percent } from "./ui.js";

const DAYS = 30;
const HEALTH_NOTES = {
  healthy: "95 % or more of calls made an image",
  degraded: "50–95 % of calls made an image",
  down: "fewer than half the calls made an image",
  paused: "the breaker is open: no traffic until it probes again",
  "no data": "fewer than 5 calls in this window",
};

/** The health word of a deployment over one window, from the figures /v1/providers reports (the CLI's
 * ``imagegate providers --server`` uses the same thresholds). */
export function healthWord(state, stats) {
  if (state !== "closed") return "paused";
  const judged = (stats?.requests ?? 0) - (stats?.rejected ?? 0);
  const rate = stats?.success_rate;
  if (rate === null || rate === undefined || judged < 5) return "no data";
  if (rate >= 0.95) return "healthy";
  return rate >= 0.5 ? "degraded" : "down";
}

/** One entry per UTC day of the last ``days`` days, oldest first; days without usage count zero. */
export function dailyTotals(rows, days = DAYS, today = new Date()) {
  const totals = new Map();
  for (const row of rows) {
    const day = totals.get(row.date) ?? { spend: 0, images: 0 };
    day.spend += Number(row.spend);
    day.images += row.images;
    totals.set(row.date, day);
  }
  return Array.from({ length: days }, (_, i) => {
    const date = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - (days - 1 - i)));
    const label = date.toISOString().slice(0, 10);
    return { label, ...(totals.get(label) ?? { spend: 0, images: 0 }) };
  });
}

const phone = () => window.matchMedia("(max-width: 640px)").matches;

function stat(label, value, note) {
  return h("div", { class: "stat card" }, h("p", { class: "small muted" }, label), h("p", { class: "stat-value" }, value), note ? h("p", { class: "small muted" }, note) : null);
}

export function initDashboard() {
  const windowSelect = $("#provider-window");
  const error = $("#dashboard-error");
  let providers = null;

  function renderAccount(account) {
    clear(
      $("#stats"),
      stat("Balance", account.metered ? money(account.balance) : "Unmetered", account.metered ? "Credits left" : "This key has no credit limit"),
      stat("Held", money(account.held), "Reserved by running jobs"),
      stat("Spent", money(account.spent), "All time"),
    );
  }

  function renderUsage(rows) {
    const days = dailyTotals(rows);
    const spent = days.reduce((s, d) => s + d.spend, 0);
    const made = days.reduce((s, d) => s + d.images, 0);
    clear(
      $("#chart-spend"),
      h("figcaption", {}, h("strong", {}, "Spend per day"), h("span", { class: "muted small" }, `${money(spent)} in ${DAYS} days`)),
      barChart(days.map((d) => ({ label: d.label, value: d.spend })), { title: "Spend per day", format: (v) => money(v), compact: phone() }),
    );
    clear(
      $("#chart-images"),
      h("figcaption", {}, h("strong", {}, "Images per day"), h("span", { class: "muted small" }, `${made} in ${DAYS} days`)),
      barChart(days.map((d) => ({ label: d.label, value: d.images })), {
        title: "Images per day",
        format: (v) => String(Math.round(v)),
        integer: true,
        compact: phone(),
      }),
    );
  }

  function renderProviders() {
    const box = $("#providers");
    if (providers === null) {
      clear(box, h("p", { class: "muted" }, "Provider stats not available on this server."));
      return;
    }
    if (!providers.length) {
      clear(box, h("p", { class: "muted" }, "No deployments are configured."));
      return;
    }
    const span = windowSelect.value;
    const head = ["Deployment", "Health", "Requests", "Success", "Refused", "Errors", "p50", "p95", "TTFB p50", "In flight"];
    const cell = (label, value) => h("td", { dataset: { label } }, value);
    clear(
      box,
      h(
        "table",
        { class: "fleet" },
        h("caption", { class: "visually-hidden" }, `Provider health over ${windowSelect.selectedOptions[0].text}`),
        h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          providers.map((p) => {
            const s = p.stats?.[span] ?? {};
            const word = healthWord(p.state, s);
            const note = word === "paused" && p.retry_after_s ? `probing again in ${Math.ceil(p.retry_after_s)} s` : HEALTH_NOTES[word];
            return h(
              "tr",
              {},
              h("th", { scope: "row" }, p.name, h("span", { class: "small muted provider-kind" }, ` ${p.provider}`)),
              cell("Health", h("span", { class: `badge health-${word.replace(" ", "-")}`, title: note }, word), h("span", { class: "small muted health-note" }, ` ${note}`)),
              cell("Requests", String(s.requests ?? 0)),
              cell("Success", percent(s.success_rate)),
              cell("Refused", String(s.refusals ?? 0)),
              cell("Errors", String(s.errors ?? 0)),
              cell("p50", duration(s.latency_ms?.p50)),
              cell("p95", duration(s.latency_ms?.p95)),
              cell("TTFB p50", duration(s.ttfb_ms?.p50)),
              cell("In flight", p.concurrency_limit ? `${p.in_flight}/${p.concurrency_limit}` : String(p.in_flight)),
            );
          }),
        ),
      ),
    );
  }

  async function refresh() {
    error.textContent = "";
    const [account, usage, fleet] = await Promise.allSettled([
      api("/v1/account"),
      api(`/v1/usage?days=${DAYS}`),
      api("/v1/providers"),
    ]);
    const problems = [];
    if (account.status === "fulfilled") renderAccount(account.value);
    else problems.push(`balance: ${account.reason.message}`);
    if (usage.status === "fulfilled") renderUsage(usage.value.data);
    else problems.push(`usage: ${usage.reason.message}`);
    if (fleet.status === "fulfilled") providers = fleet.value.data;
    else if (fleet.reason instanceof ApiError && fleet.reason.status === 404) providers = null;
    else problems.push(`providers: ${fleet.reason.message}`);
    renderProviders();
    if (problems.length) error.textContent = `Some figures could not be loaded (${problems.join("; ")}).`;
  }

  windowSelect.addEventListener("change", renderProviders);
  $("#dashboard-refresh").addEventListener("click", refresh);
  return { refresh };
}
