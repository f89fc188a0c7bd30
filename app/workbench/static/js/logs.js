// Logs: recent lines, then a live tail over Server-Sent Events, filtered in place.
import { API, api, clear, fmtTime, h, pretty, steps, traceLink } from "./core.js";

const MAX_ROWS = 1000;
const LEVELS = ["debug", "info", "warning", "error"];
// Trace ids are 32 random hex characters: 8 (what the tables show first) tell rows apart with
// near certainty, while a shorter prefix would match unrelated traces.
const MIN_TRACE_PREFIX = 8;
const FULL_TRACE_ID = /^[0-9a-f]{32}$/;

// How the "Trace id" text filters: a full id exactly, a prefix of at least 8 characters, and
// anything shorter not at all (with a hint saying so).
export function traceFilter(text) {
  const value = text.trim().toLowerCase();
  if (!value) return { test: () => true, hint: "full id, or its first 8+ characters", state: "" };
  if (FULL_TRACE_ID.test(value)) {
    return { test: (id) => (id || "").toLowerCase() === value, hint: "exact id", state: "exact" };
  }
  if (value.length < MIN_TRACE_PREFIX) {
    return { test: () => true, state: "short",
      hint: `type at least ${MIN_TRACE_PREFIX} characters (${value.length} so far) `
        + "or paste the full id" };
  }
  return { test: (id) => (id || "").toLowerCase().startsWith(value), hint: "ids starting with this",
    state: "prefix" };
}

export async function mount(root, _args, query) {
  const catalog = await steps();
  const filters = { level: query.get("level") || "", step: query.get("step") || "",
    trace_id: query.get("trace_id") || "", q: query.get("q") || "" };
  const rows = h("tbody", {});
  const status = h("span", { class: "live", "data-state": "connecting" }, "connecting…");
  let paused = false;
  const pause = h("button", { type: "button", class: "secondary", onclick: () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
  } }, "Pause");
  const input = (key, label, attrs = {}, extra = null) => h("label", { class: "field" },
    h("span", {}, label),
    h("input", { name: key, value: filters[key], ...attrs, oninput: (ev) => {
      filters[key] = ev.target.value.trim();
      applyFilters();
    } }), extra);
  const traceHint = h("span", { class: "hint", "aria-live": "polite" });
  const stepList = h("datalist", { id: "log-steps" },
    catalog.steps.map((s) => h("option", { value: s.name })));
  clear(root,
    h("div", { class: "view-head" }, h("h1", {}, "Logs ", status),
      h("form", { class: "filters", onsubmit: (ev) => ev.preventDefault() },
        h("label", { class: "field" }, h("span", {}, "Level"),
          h("select", { name: "level", onchange: (ev) => {
            filters.level = ev.target.value;
            applyFilters();
          } }, h("option", { value: "" }, "Any level"),
          LEVELS.map((l) => h("option", { value: l, selected: l === filters.level },
            `${l} and above`)))),
        input("step", "Step", { list: "log-steps", placeholder: "any" }), stepList,
        input("trace_id", "Trace id", { placeholder: "any", class: "mono", spellcheck: "false" },
          traceHint),
        input("q", "Text", { placeholder: "contains…", type: "search" }), pause)),
    h("table", { class: "table logs" }, h("thead", {}, h("tr", {},
      ["Time", "Level", "Step", "Message", "Fields", "Trace"].map((t) => h("th", {}, t)))), rows));

  const matches = (e) => (!filters.level || rank(e.level) >= rank(filters.level))
    && (!filters.step || e.step === filters.step)
    && trace.test(e.trace_id)
    && (!filters.q || `${e.message} ${JSON.stringify(e.fields || {})}`.toLowerCase()
      .includes(filters.q.toLowerCase()));
  const row = (e) => {
    const tr = h("tr", { class: `log-${e.level}` },
      h("td", { class: "ts" }, fmtTime(e.ts)), h("td", { class: "lvl" }, e.level),
      h("td", { class: "step" }, e.step || ""), h("td", { class: "msg" }, e.message),
      h("td", { class: "mono small fields" },
        e.fields && Object.keys(e.fields).length ? pretty(e.fields).replace(/\s*\n\s*/g, " ") : ""),
      h("td", {}, e.trace_id ? traceLink(e.trace_id) : ""));
    tr.entry = e;
    tr.hidden = !matches(e);
    return tr;
  };
  let trace = traceFilter(filters.trace_id);
  let fetched = "";
  function applyFilters() {
    trace = traceFilter(filters.trace_id);
    traceHint.textContent = trace.hint;
    traceHint.dataset.state = trace.state;
    for (const tr of rows.children) tr.hidden = !matches(tr.entry);
    if (trace.state === "exact" && fetched !== filters.trace_id) {
      fetched = filters.trace_id;
      olderLinesOf(fetched);
    }
  }
  // The page holds only the latest lines; a full id asks the server for that trace's own.
  async function olderLinesOf(traceId) {
    const got = await api(`/logs?trace_id=${encodeURIComponent(traceId)}&limit=300`);
    const key = (e) => `${e.ts}|${e.span_id || ""}|${e.message}`;
    const shown = new Set([...rows.children].map((tr) => key(tr.entry)));
    const missing = got.logs.filter((e) => !shown.has(key(e)));
    if (!missing.length) return;
    const all = [...[...rows.children].map((tr) => tr.entry), ...missing]
      .sort((a, b) => b.ts - a.ts).slice(0, MAX_ROWS);
    rows.replaceChildren(...all.map(row));
  }

  const initial = await api("/logs?limit=300");
  rows.append(...initial.logs.map(row));
  applyFilters();
  const source = new EventSource(`${API}/logs/stream`);
  source.addEventListener("open", () => { status.dataset.state = "live"; status.textContent = "live"; });
  source.addEventListener("error", () => {
    status.dataset.state = "down";
    status.textContent = "reconnecting…";
  });
  source.addEventListener("log", (ev) => {
    if (paused) return;
    rows.prepend(row(JSON.parse(ev.data)));
    while (rows.children.length > MAX_ROWS) rows.lastElementChild.remove();
  });
  return () => source.close();
}

function rank(level) {
  const i = LEVELS.indexOf(String(level).toLowerCase());
  return i < 0 ? 1 : i;
}
