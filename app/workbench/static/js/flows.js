// Flows: one graph per flow; a click on a step shows its config, source and recent runs.
import {
  api, badge, clear, errorBox, fmtMs, fmtTime, h, kindIcon, plural, pretty, steps, toast,
  traceLink,
} from "./core.js";
import { drawFlow } from "./graphview.js";

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
    showStep(detail, id).then(() => {
      // Below 1200 px the details sit under the graph: bring them into sight.
      if (detail.getBoundingClientRect().top > window.innerHeight - 80) {
        detail.scrollIntoView({ behavior: "smooth", block: "start" });
      }
    });
  };
  canvas.append(drawFlow(flowModel(graph, flow, configs), { onpick: pick, selected: picked,
    onflow: (name) => { window.location.hash = `#/flows/${encodeURIComponent(name)}`; } }));
  if (picked) showStep(detail, picked);
  else detail.append(h("p", { class: "muted" }, "Click a step to see its config, source and runs."));
  return null;
}

// Steps of the flow, a box per topic they emit or await, and the steps of other flows on those
// topics collapsed into one small stub per topic and side ("3 steps in gmail").
function flowModel(graph, flow, configs) {
  const members = new Set(graph.flows[flow]);
  const info = new Map(graph.nodes.map((n) => [n.id, n]));
  const noSub = new Set(graph.orphans.no_subscriber);
  const noEmit = new Set(graph.orphans.no_emitter);
  const outputs = new Set(graph.outputs || []);
  const nodes = [];
  const edges = [];
  const topics = new Set();
  for (const id of graph.flows[flow]) {
    const n = info.get(id) || { kind: "event", emits: [], subscribes: [] };
    const c = configs.get(id) || {};
    nodes.push({ id, kind: n.kind, name: id, sub: subtitle(n.kind, c),
      title: c.description ? `${id}: ${c.description}` : id });
    for (const t of n.emits) { topics.add(t); edges.push({ from: id, to: `topic:${t}` }); }
    for (const t of n.subscribes) { topics.add(t); edges.push({ from: `topic:${t}`, to: id }); }
  }
  for (const t of [...topics].sort()) {
    const why = noSub.has(t) ? "no subscriber" : noEmit.has(t) ? "no emitter"
      : outputs.has(t) ? "output for your steps" : "";
    const title = noSub.has(t) ? `No step subscribes to “${t}”: its events go nowhere.`
      : noEmit.has(t) ? `No step emits “${t}”: only \`stepline emit\` or the Events view `
        + "can start it."
        : outputs.has(t) ? `“${t}” is published for your own steps to subscribe to.`
          : `topic ${t}`;
    nodes.push({ id: `topic:${t}`, kind: "topic", name: t, sub: why, title,
      warn: noSub.has(t) || noEmit.has(t), output: outputs.has(t) });
    const emitters = graph.nodes.filter((n) => !members.has(n.id) && n.emits.includes(t));
    const takers = graph.nodes.filter((n) => !members.has(n.id) && n.subscribes.includes(t));
    if (emitters.length) {
      nodes.push(stub(`stub:in:${t}`, emitters));
      edges.push({ from: `stub:in:${t}`, to: `topic:${t}` });
    }
    if (takers.length) {
      nodes.push(stub(`stub:out:${t}`, takers));
      edges.push({ from: `topic:${t}`, to: `stub:out:${t}` });
    }
  }
  return { nodes, edges };
}

function stub(id, steps) {
  const flows = [...new Set(steps.flatMap((n) => n.flows || []))].sort();
  const names = steps.map((n) => n.id).sort();
  return { id, kind: "stub", flow: flows[0],
    name: names.length === 1 ? names[0] : `${names.length} steps`,
    sub: `in ${flows.join(", ")}`, title: `Other flows: ${names.join(", ")}` };
}

function subtitle(kind, c) {
  if (kind === "api") return `${c.method || ""} ${c.path || ""}`;
  if (kind === "cron") return `${c.cron || ""} ${c.timezone || "UTC"}`;
  return "";  // an event step's topics are the boxes beside it
}

function legend() {
  return h("div", { class: "legend" },
    ["api", "event", "cron"].map((k) => h("span", { class: `legend-item legend-${k}` },
      `${kindIcon(k)} ${k}`)),
    h("span", { class: "legend-item legend-pill" }, "topic"),
    h("span", { class: "legend-item legend-topic" }, "⚠ orphan topic"),
    h("span", { class: "legend-item legend-stub" }, "other flow"));
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
  if (!items.length) return null;
  const list = h("ul", { class: "problems", "aria-label": "Problems" }, items);
  // A long list would push the graph off the screen: past three, it opens on demand.
  if (items.length <= 3) return list;
  const errors = catalog.errors.length;
  return h("details", { class: "problems-box", open: errors > 0 },
    h("summary", {}, `${plural(items.length, "problem")} (${plural(errors, "load error")}, `
      + `${plural(items.length - errors, "topic warning")})`), list);
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
    h("p", { class: "mono small source-file", title: step.file }, step.path || step.file),
    h("div", { class: "actions" }, actions),
    h("dl", { class: "facts" },
      fact("Emits", (c.emits || []).join(", ") || "—"),
      step.kind === "event" ? fact("Subscribes", (c.subscribes || []).join(", ")) : null,
      step.kind === "api" ? fact("Route", `${c.method} ${c.path}`) : null,
      step.kind === "cron" ? fact("Schedule", `${c.cron} (${c.timezone})`) : null,
      step.kind === "cron" && step.next_run ? fact("Next run", nextRun(step, c.timezone))
        : null,
      step.kind !== "api" ? fact("Retries / timeout", `${plural(c.retries, "attempt")}, ${c.timeout} s`)
        : null,
      step.flow_control ? fact("Flow control", step.flow_control) : null,
      fact("Queue", `${q.queued || 0} queued, ${q.in_flight || 0} in flight, ` +
        `${q.scheduled || 0} scheduled (retries, delayed emits, debounce, rate limit` +
        `${step.next_due ? `; next ${fmtTime(step.next_due)}` : ""}), ` +
        `${q.dead || 0} dead`)),
    h("h3", {}, "Recent runs"), runsTable(step.runs),
    h("details", { open: true }, h("summary", {}, "Config"),
      h("pre", { class: "code" }, pretty(withoutFile(c)))),
    h("details", {}, h("summary", {}, "Source"), h("pre", { class: "code source" }, step.source)));
}

function nextRun(step, tz) {
  const minutes = Math.max(0, Math.round((step.next_run_ts - Date.now() / 1000) / 60));
  const wait = minutes < 60 ? `${minutes} min` : minutes < 2880 ? `${Math.round(minutes / 60)} h`
    : `${Math.round(minutes / 1440)} days`;
  return `${step.next_run.slice(0, 16).replace("T", " ")} ${tz} (in ${wait})`;
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
      h("td", { class: "when" }, fmtTime(r.started_at)),
      h("td", {}, badge(r.status), r.attempt > 1 ? ` #${r.attempt}` : ""),
      h("td", {}, fmtMs(r.duration_ms)), h("td", {}, traceLink(r.trace_id))))));
}
