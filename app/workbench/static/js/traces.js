// Traces: newest first with filters; one trace as a timeline of spans with emits and logs.
import {
  api, badge, clear, copyButton, errorBox, every, fmtMs, fmtTime, h, kindIcon, plural, pretty,
  select, steps, traceLink,
} from "./core.js";

export async function mount(root, args, query) {
  if (args[0]) return mountTrace(root, args[0]);
  const catalog = await steps();
  const filters = { flow: query.get("flow") || "", step: query.get("step") || "",
    status: query.get("status") || "" };
  const body = h("tbody", {});
  const note = h("p", { class: "muted small" });
  const update = (key) => (ev) => {
    filters[key] = ev.target.value;
    const qs = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
    history.replaceState(null, "", `#/traces${qs ? `?${qs}` : ""}`);
    refresh();
  };
  const flowOpts = [["", "All flows"], ...Object.keys(catalog.flows).sort().map((f) => [f, f])];
  const stepOpts = [["", "All steps"],
    ...catalog.steps.map((s) => s.name).sort().map((s) => [s, s])];
  const statusOpts = [["", "Any status"], ["ok", "ok"], ["retrying", "retrying"],
    ["failed", "failed"]];
  clear(root,
    h("div", { class: "view-head" }, h("h1", {}, "Traces"),
      h("form", { class: "filters", onsubmit: (ev) => ev.preventDefault() },
        select("flow", "Flow", flowOpts, filters.flow, update("flow")),
        select("step", "Step", stepOpts, filters.step, update("step")),
        select("status", "Status", statusOpts, filters.status, update("status")))),
    h("table", { class: "table traces" },
      h("thead", {}, h("tr", {}, ["Started", "Root step", "Status", "Spans", "Duration", "Steps",
        "Trace"].map((t) => h("th", {}, t)))), body),
    note);
  let last = "";
  const refresh = async () => {
    const qs = new URLSearchParams({ limit: "100",
      ...Object.fromEntries(Object.entries(filters).filter(([, v]) => v)) });
    const data = await api(`/traces?${qs}`);
    const key = JSON.stringify(data.traces);
    if (key === last) return;
    last = key;
    clear(body, data.traces.map((t) => h("tr", {
      class: "clickable", dataset: { trace: t.trace_id },
      onclick: (ev) => { if (ev.target.tagName !== "A") location.hash = `#/traces/${t.trace_id}`; },
    },
    h("td", {}, fmtTime(t.started_at)), h("td", { class: "step" }, t.root), h("td", {}, badge(t.status)),
    h("td", {}, String(t.spans)), h("td", {}, fmtMs(t.duration_ms)),
    h("td", { class: "small steps" }, t.steps.join(", ")), h("td", {}, traceLink(t.trace_id)))));
    note.textContent = data.traces.length ? "" : "No traces match. Send a request from "
      + "Endpoints or emit an event from Events.";
  };
  return every(2500, refresh);
}

async function mountTrace(root, traceId) {
  const head = h("div", { class: "view-head" },
    h("h1", {}, "Trace ", h("span", { class: "mono" }, traceId),
      copyButton(traceId, "Copy the trace id")),
    h("a", { href: "#/traces", class: "button secondary" }, "← All traces"));
  const box = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  clear(root, head, box);
  let last = "";
  let tries = 0;
  const refresh = async () => {
    let data;
    try {
      data = await api(`/traces/${encodeURIComponent(traceId)}`);
    } catch (err) {
      // A request's span is written just after its response: wait a little before saying so.
      if (err.status === 404 && tries++ < 5) return;
      clear(box, errorBox(err));
      return;
    }
    const key = `${data.spans.length}/${data.logs.length}/` +
      data.spans.map((s) => s.status).join();
    if (key !== last) {
      last = key;
      renderTrace(box, data);
    }
  };
  return every(2000, refresh);
}

function renderTrace(box, data) {
  const spans = data.spans;
  const t0 = Math.min(...spans.map((s) => s.started_at));
  const end = Math.max(...spans.map((s) => s.started_at + s.duration_ms / 1000));
  const total = Math.max(end - t0, 0.001);
  const worst = spans.some((s) => s.status === "failed") ? "failed"
    : spans.some((s) => s.status === "retrying") ? "retrying" : "ok";
  const bySpan = new Map();
  for (const log of data.logs) {
    (bySpan.get(log.span_id) || bySpan.set(log.span_id, []).get(log.span_id)).push(log);
  }
  const loose = data.logs.filter((l) => !spans.some((s) => s.span_id === l.span_id));
  clear(box,
    h("p", { class: "trace-summary" }, badge(worst), ` ${plural(spans.length, "span")} · started `,
      fmtTime(t0), ` · ${fmtMs(total * 1000)} end to end`),
    h("div", { class: "timeline", role: "list" }, spans.map((s) => spanRow(s, t0, total,
      bySpan.get(s.span_id) || []))),
    loose.length ? [h("h3", {}, "Other logs of this trace"), logList(loose)] : null);
}

function spanRow(s, t0, total, logs) {
  const left = ((s.started_at - t0) / total) * 100;
  const width = Math.max((s.duration_ms / 1000 / total) * 100, 0.4);
  const bar = h("div", { class: `bar bar-${s.status}`, title: `${fmtMs(s.duration_ms)}` });
  bar.style.left = `${Math.min(left, 99.6)}%`;
  bar.style.width = `${Math.min(width, 100 - Math.min(left, 99.6))}%`;
  return h("div", { class: `span span-${s.status}`, role: "listitem", dataset: { step: s.step } },
    h("div", { class: "span-label" },
      h("strong", {}, `${kindIcon(s.kind)} ${s.step}`), " ", badge(s.status),
      h("div", { class: "small muted" }, [s.topic, `attempt ${s.attempt}`, fmtMs(s.duration_ms),
        `+${fmtMs((s.started_at - t0) * 1000)}`].filter(Boolean).join(" · "))),
    h("div", { class: "span-track" }, bar),
    h("div", { class: "span-extra" },
      s.error ? h("pre", { class: "span-error" }, s.error) : null,
      s.emitted.length ? h("div", { class: "emitted" }, "Emitted: ",
        s.emitted.map((t) => h("span", { class: "chip" }, t))) : null,
      logs.length ? h("details", { open: logs.length <= 5 },
        h("summary", {}, plural(logs.length, "log line")), logList(logs)) : null));
}

export function logList(logs) {
  return h("ul", { class: "log-lines" }, logs.map((l) => h("li", { class: `log log-${l.level}` },
    h("span", { class: "ts" }, fmtTime(l.ts)), h("span", { class: "lvl" }, l.level),
    h("span", { class: "msg" }, l.message),
    l.fields && Object.keys(l.fields).length
      ? h("span", { class: "fields mono" }, pretty(l.fields).replace(/\s*\n\s*/g, " ")) : null)));
}
