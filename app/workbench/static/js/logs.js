// Logs: recent lines, then a live tail over Server-Sent Events, filtered in place.
import { API, api, clear, fmtTime, h, pretty, steps, traceLink } from "./core.js";

const MAX_ROWS = 1000;
const LEVELS = ["debug", "info", "warning", "error"];

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
  const input = (key, label, attrs = {}) => h("label", { class: "field" }, h("span", {}, label),
    h("input", { name: key, value: filters[key], ...attrs, oninput: (ev) => {
      filters[key] = ev.target.value.trim();
      applyFilters();
    } }));
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
        input("trace_id", "Trace id", { placeholder: "any", class: "mono" }),
        input("q", "Text", { placeholder: "contains…", type: "search" }), pause)),
    h("table", { class: "table logs" }, h("thead", {}, h("tr", {},
      ["Time", "Level", "Step", "Message", "Fields", "Trace"].map((t) => h("th", {}, t)))), rows));

  const matches = (e) => (!filters.level || rank(e.level) >= rank(filters.level))
    && (!filters.step || e.step === filters.step)
    && (!filters.trace_id || (e.trace_id || "").startsWith(filters.trace_id))
    && (!filters.q || `${e.message} ${JSON.stringify(e.fields || {})}`.toLowerCase()
      .includes(filters.q.toLowerCase()));
  const row = (e) => {
    const tr = h("tr", { class: `log-${e.level}` },
      h("td", { class: "ts" }, fmtTime(e.ts)), h("td", { class: "lvl" }, e.level),
      h("td", {}, e.step || ""), h("td", { class: "msg" }, e.message),
      h("td", { class: "mono small" },
        e.fields && Object.keys(e.fields).length ? pretty(e.fields).replace(/\s*\n\s*/g, " ") : ""),
      h("td", {}, e.trace_id ? traceLink(e.trace_id) : ""));
    tr.entry = e;
    tr.hidden = !matches(e);
    return tr;
  };
  function applyFilters() {
    for (const tr of rows.children) tr.hidden = !matches(tr.entry);
  }

  const initial = await api("/logs?limit=300");
  rows.append(...initial.logs.map(row));
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
