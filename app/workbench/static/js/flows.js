// Flows: one graph per flow; a click on a step shows its config, source and recent runs.
import {
  api, badge, clear, errorBox, fmtMs, fmtTime, h, kindIcon, pretty, steps, toast, traceLink,
} from "./core.js";
import { layout, render } from "./graph.js";

export async function mount(root, args, query) {
  const [graph, catalog] = await Promise.all([api("/flows"), steps()]);
  const configs = new Map(catalog.steps.map((s) => [s.name, s]));
  const flowNames = Object.keys(graph.flows).sort();
  const flow = graph.flows[args[0]] ? args[0] : flowNames[0];
  const picked = query.get("step");

  const side = h("aside", { class: "sidebar" }, h("h2", {}, "Flows"),
    h("ul", { class: "flow-list" }, flowNames.map((name) => h("li", {},
      h("a", { href: `#/flows/${encodeURIComponent(name)}`,
        class: name === flow ? "active" : "" }, name,
      h("span", { class: "count" }, String(graph.flows[name].length)))))));
  const problems = problemList(graph, catalog, flow);
  const canvas = h("div", { class: "canvas" });
  const detail = h("section", { class: "detail", "aria-live": "polite" });
  clear(root, h("div", { class: "flows-layout" }, side,
    h("div", { class: "flows-main" },
      h("div", { class: "view-head" }, h("h1", {}, flow ? `Flow: ${flow}` : "Flows"), legend()),
      problems, canvas),
    detail));

  if (!flow) {
    canvas.append(h("p", { class: "muted" },
      "No steps loaded. Add *_step.py files under your steps directory."));
    return null;
  }
  const pick = (id) => {
    const url = `#/flows/${encodeURIComponent(flow)}?step=${encodeURIComponent(id)}`;
    history.replaceState(null, "", url);
    for (const el of canvas.querySelectorAll(".node-selected")) el.classList.remove("node-selected");
    const el = [...canvas.querySelectorAll("[data-step]")].find((n) => n.dataset.step === id);
    if (el) el.classList.add("node-selected");
    showStep(detail, id);
  };
  canvas.append(render(layout(...flowGraph(graph, flow, configs)), { onpick: pick,
    selected: picked }));
  if (picked) showStep(detail, picked);
  else detail.append(h("p", { class: "muted" }, "Click a step to see its config, source and runs."));
  return null;
}

function flowGraph(graph, flow, configs) {
  const members = new Set(graph.flows[flow]);
  const noSub = new Set(graph.orphans.no_subscriber);
  const noEmit = new Set(graph.orphans.no_emitter);
  const nodes = [];
  const edges = [];
  const seen = new Set();
  const addStep = (id, foreign) => {
    if (seen.has(id)) return;
    seen.add(id);
    const c = configs.get(id) || {};
    const node = graph.nodes.find((n) => n.id === id) || { kind: "event" };
    nodes.push({ id, kind: node.kind, label: id, foreign, sub: foreign
      ? `in flow ${(node.flows || []).join(", ")}` : subtitle(node.kind, c),
    title: c.description ? `${id}: ${c.description}` : id });
  };
  for (const id of graph.flows[flow]) addStep(id, false);
  for (const e of graph.edges) {
    if (!members.has(e.from) && !members.has(e.to)) continue;
    addStep(e.from, !members.has(e.from));
    addStep(e.to, !members.has(e.to));
    edges.push({ from: e.from, to: e.to, label: e.topic });
  }
  for (const n of graph.nodes.filter((x) => members.has(x.id))) {
    for (const t of n.emits.filter((x) => noSub.has(x))) {
      const id = `topic:out:${t}`;
      if (!seen.has(id)) nodes.push({ id, kind: "topic", label: t, warn: true,
        sub: "no subscriber", title: `No step subscribes to “${t}”: its events go nowhere.` });
      seen.add(id);
      edges.push({ from: n.id, to: id, label: "" });
    }
    for (const t of n.subscribes.filter((x) => noEmit.has(x))) {
      const id = `topic:in:${t}`;
      if (!seen.has(id)) nodes.push({ id, kind: "topic", label: t, warn: true,
        sub: "no emitter", title: `No step emits “${t}”: only \`stepline emit\` or the Events `
          + "view can start it." });
      seen.add(id);
      edges.push({ from: id, to: n.id, label: "" });
    }
  }
  return [nodes, edges];
}

function subtitle(kind, c) {
  if (kind === "api") return `${c.method || ""} ${c.path || ""}`;
  if (kind === "cron") return `${c.cron || ""} ${c.timezone && c.timezone !== "UTC" ? c.timezone : ""}`;
  const subs = c.subscribes || [];
  return subs.length === 1 ? `on ${subs[0]}` : `on ${subs.length} topics`;
}

function legend() {
  return h("div", { class: "legend" },
    ["api", "event", "cron"].map((k) => h("span", { class: `legend-item legend-${k}` },
      `${kindIcon(k)} ${k}`)),
    h("span", { class: "legend-item legend-topic" }, "⚠ orphan topic"));
}

function problemList(graph, catalog, flow) {
  // Only the orphan topics this flow's steps emit or wait for; load errors always show.
  const mine = graph.nodes.filter((n) => (graph.flows[flow] || []).includes(n.id));
  const emitted = new Set(mine.flatMap((n) => n.emits));
  const awaited = new Set(mine.flatMap((n) => n.subscribes));
  const items = [
    ...catalog.errors.map((e) => h("li", { class: "error" },
      `${e.file}: ${e.field ? `${e.field}: ` : ""}${e.error}`)),
    ...graph.orphans.no_subscriber.filter((t) => emitted.has(t)).map((t) => h("li", { class: "warn" },
      `Topic “${t}” is emitted but no step subscribes to it.`)),
    ...graph.orphans.no_emitter.filter((t) => awaited.has(t)).map((t) => h("li", { class: "warn" },
      `Topic “${t}” is subscribed to but no step emits it.`)),
  ];
  return items.length ? h("ul", { class: "problems", "aria-label": "Problems" }, items) : null;
}

async function showStep(detail, name) {
  clear(detail, h("p", { class: "muted" }, `Loading ${name}…`));
  let step;
  try {
    step = await api(`/workbench/api/steps/${encodeURIComponent(name)}`);
  } catch (err) {
    clear(detail, errorBox(err));
    return;
  }
  const c = step.config;
  const actions = [];
  if (step.kind === "cron") {
    actions.push(h("button", { onclick: async () => {
      try {
        const out = await api(`/cron/${encodeURIComponent(name)}/run`, { method: "POST" });
        toast(`Started ${name}`);
        window.location.hash = `#/traces/${out.trace_id}`;
      } catch (err) { toast(err.message, "error"); }
    } }, "Run now"));
  }
  if (step.kind === "api") {
    actions.push(h("a", { class: "button", href: `#/endpoints?step=${encodeURIComponent(name)}` },
      "Send a request"));
  }
  actions.push(h("a", { class: "button secondary",
    href: `#/traces?step=${encodeURIComponent(name)}` }, "All traces"));
  const q = step.queue || {};
  clear(detail,
    h("div", { class: "detail-head" }, h("h2", {}, `${kindIcon(step.kind)} ${name}`),
      badge(step.kind)),
    c.description ? h("p", {}, c.description) : null,
    h("p", { class: "mono small", title: "Source file" }, step.file),
    h("div", { class: "actions" }, actions),
    h("dl", { class: "facts" },
      fact("Emits", (c.emits || []).join(", ") || "—"),
      step.kind === "event" ? fact("Subscribes", (c.subscribes || []).join(", ")) : null,
      step.kind === "api" ? fact("Route", `${c.method} ${c.path}`) : null,
      step.kind === "cron" ? fact("Schedule", `${c.cron} (${c.timezone})`) : null,
      step.kind !== "api" ? fact("Retries / timeout", `${c.retries} attempts, ${c.timeout} s`)
        : null,
      fact("Queue", `${q.queued || 0} queued, ${q.in_flight || 0} in flight, ` +
        `${q.scheduled || 0} retrying, ${q.dead || 0} dead`)),
    h("h3", {}, "Recent runs"), runsTable(step.runs),
    h("details", { open: true }, h("summary", {}, "Config"),
      h("pre", { class: "code" }, pretty(withoutFile(c)))),
    h("details", {}, h("summary", {}, "Source"), h("pre", { class: "code source" }, step.source)));
}

function withoutFile(config) {
  const { file: _file, async: _async, ...rest } = config;
  return rest;
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function runsTable(runs) {
  if (!runs.length) return h("p", { class: "muted" }, "No runs recorded yet.");
  return h("table", { class: "table compact runs" },
    h("thead", {}, h("tr", {}, ["When", "Status", "Took", "Trace"].map((t) =>
      h("th", {}, t)))),
    h("tbody", {}, runs.map((r) => h("tr", { title: r.error || `attempt ${r.attempt}` },
      h("td", {}, fmtTime(r.started_at)),
      h("td", {}, badge(r.status), r.attempt > 1 ? ` #${r.attempt}` : ""),
      h("td", {}, fmtMs(r.duration_ms)), h("td", {}, traceLink(r.trace_id, r.trace_id.slice(0, 8)))))));
}
