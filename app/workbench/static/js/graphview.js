// Draws a flow as SVG: boxes sized to their text (names wrap between words, never cut), the
// layered layout from graph.js, and zoom, pan and fit-to-view (fit on open and on resize until
// the user zooms or pans).
import { h, kindIcon } from "./core.js";
import { layout } from "./graph.js";

const PAD_X = 12;
const STEP_MIN_W = 150;
const MAX_TEXT_W = 230;
const FIT_PAD = 16;
const TOOLBAR_H = 40; // the zoom buttons sit above the drawing, never on it
const ZOOM_MIN = 0.1;
const ZOOM_MAX = 3;

// Line boxes per kind: [class, line height]; the text sits on 78 % of the line height.
const NAME_LINE = ["name", 17];
const SUB_LINE = ["sub", 15];
const TOPIC_LINE = ["topic", 15];
const WHY_LINE = ["topic-why", 13];
const STUB_LINE = ["stub-name", 14];
const STUB_SUB_LINE = ["stub-sub", 13];

// model: {nodes: [{id, kind, name, sub, title, warn, output, flow}], edges: [{from, to}]}
export function drawFlow(model, { onpick, onflow, selected } = {}) {
  const measurer = h("svg:svg", { class: "graph graph-measure", "aria-hidden": "true" });
  document.body.append(measurer);
  let boxes;
  try {
    boxes = model.nodes.map((n) => buildNode(n, measurer, { onpick, onflow, selected }));
  } finally {
    measurer.remove();
  }
  const placed = layout(boxes.map((b) => ({ id: b.id, w: b.w, h: b.h, entry: b.entry })),
    model.edges);
  const at = new Map(placed.nodes.map((n) => [n.id, n]));
  const port = h("svg:g", { class: "viewport" });
  const edges = h("svg:g", { class: "edges" });
  for (const e of placed.edges) {
    edges.append(h("svg:path", {
      d: e.d, class: `edge${e.back ? " edge-back" : ""}`, dataset: { from: e.from, to: e.to },
      [e.back ? "marker-start" : "marker-end"]: e.back ? "url(#arrow-back)" : "url(#arrow)",
    }));
  }
  const nodes = h("svg:g", { class: "nodes" });
  for (const b of boxes) {
    const p = at.get(b.id);
    b.el.setAttribute("transform", `translate(${p.x},${p.y})`);
    nodes.append(b.el);
  }
  port.append(edges, nodes);
  const svg = h("svg:svg", { class: "graph", role: "img", "aria-label": "Flow graph" },
    h("svg:defs", {}, marker("arrow", "auto"), marker("arrow-back", "auto-start-reverse")),
    port);
  const zoom = h("span", { class: "zoom-level", "aria-live": "polite" }, "100%");
  const tools = h("div", { class: "graph-tools", role: "toolbar", "aria-label": "Zoom" });
  const view = h("div", { class: "graph-view" }, svg, tools);
  const control = panZoom(view, svg, port, { w: placed.width, h: placed.height }, zoom);
  tools.append(
    h("button", { type: "button", class: "secondary", "aria-label": "Zoom out",
      title: "Zoom out (Ctrl + wheel)", onclick: () => control.step(1 / 1.25) }, "−"),
    zoom,
    h("button", { type: "button", class: "secondary", "aria-label": "Zoom in",
      title: "Zoom in (Ctrl + wheel)", onclick: () => control.step(1.25) }, "+"),
    h("button", { type: "button", class: "secondary", "aria-label": "Fit to view",
      title: "Show the whole flow", onclick: () => control.fit(true) }, "Fit"));
  return view;
}

function marker(id, orient) {
  return h("svg:marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
    markerHeight: 7, orient }, h("svg:path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }));
}

function buildNode(n, measurer, { onpick, onflow, selected }) {
  let cls;
  let lines;
  let minW = 0;
  let centred = false;
  if (n.kind === "topic") {
    cls = ["edge-label", n.warn && "node-topic", n.output && "topic-output"];
    lines = [[TOPIC_LINE, `${n.warn ? "⚠ " : ""}${n.name}`]];
    if (n.sub) lines.push([WHY_LINE, n.sub]);
    centred = true;
  } else if (n.kind === "stub") {
    cls = ["node", "node-stub"];
    lines = [[STUB_LINE, n.name], [STUB_SUB_LINE, n.sub]];
    centred = true;
  } else {
    cls = ["node", `node-${n.kind}`, n.id === selected && "node-selected"];
    // The kind shows as colour, border and icon (see the legend): no line of its own.
    lines = [[NAME_LINE, `${kindIcon(n.kind)} ${n.name}`]];
    if (n.sub) lines.push([SUB_LINE, n.sub]);
    minW = STEP_MIN_W;
  }
  const g = h("svg:g", { class: cls.filter(Boolean).join(" "), dataset: { id: n.id } });
  measurer.append(g);
  const rows = [];
  for (const [[textCls, lh], text] of lines) {
    for (const part of wrap(text, textCls, g)) rows.push({ textCls, lh, text: part.text,
      width: part.width });
  }
  const w = Math.ceil(Math.max(minW, ...rows.map((r) => r.width + 2 * PAD_X)));
  const padY = n.kind === "topic" || n.kind === "stub" ? 5 : 8;
  const height = Math.ceil(rows.reduce((s, r) => s + r.lh, 2 * padY));
  g.replaceChildren();
  const radius = n.kind === "topic" ? Math.min(height / 2, 12) : n.kind === "api" ? 14 : 5;
  g.append(h("svg:rect", { class: "box", width: w, height, rx: radius }));
  if (n.kind === "cron") {
    g.append(h("svg:rect", { class: "inner", x: 3, y: 3, width: w - 6, height: height - 6,
      rx: 3 }));
  }
  let y = padY;
  for (const r of rows) {
    g.append(h("svg:text", { class: r.textCls, x: centred ? w / 2 : PAD_X,
      y: y + r.lh * 0.78, "text-anchor": centred ? "middle" : "start" }, r.text));
    y += r.lh;
  }
  g.append(h("svg:title", {}, n.title || n.name));
  if (n.kind === "topic") return { id: n.id, el: g, w, h: height };
  g.setAttribute("tabindex", "0");
  g.setAttribute("role", n.kind === "stub" ? "link" : "button");
  if (n.kind === "stub") {
    g.dataset.flow = n.flow;
    g.setAttribute("aria-label", `${n.name} ${n.sub}`);
    activate(g, () => onflow && onflow(n.flow));
  } else {
    g.dataset.step = n.id;
    g.setAttribute("aria-label", `${n.kind} step ${n.id}`);
    activate(g, () => onpick && onpick(n.id));
  }
  return { id: n.id, el: g, w, h: height, entry: n.kind === "api" || n.kind === "cron" };
}

function activate(el, fn) {
  el.addEventListener("click", fn);
  el.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); fn(); }
  });
}

// Splits between words: before a capital that follows a small letter (ReviewPull|Request),
// and after separators (gmail.|email.|checked, /webhooks/|github). A word wider than the limit
// stays whole and the box grows to hold it.
function wrap(text, textCls, group) {
  const probe = h("svg:text", { class: textCls }, "");
  group.append(probe);
  const width = (s) => { probe.textContent = s; return probe.getComputedTextLength(); };
  const words = String(text).split(/(?<=[a-z0-9])(?=[A-Z])|(?<=[./_:\s-])/u).filter(Boolean);
  const out = [];
  let line = "";
  for (const word of words) {
    const next = line + word;
    if (line && width(next.trimEnd()) > MAX_TEXT_W) {
      out.push(line.trimEnd());
      line = word.trimStart();
    } else {
      line = next;
    }
  }
  if (line || !out.length) out.push(line.trimEnd());
  const rows = out.map((t) => ({ text: t, width: width(t) }));
  probe.remove();
  return rows;
}

function panZoom(view, svg, port, size, label) {
  let s = 1;
  let tx = 0;
  let ty = 0;
  let moved = false;
  const apply = () => {
    port.setAttribute("transform", `translate(${tx},${ty}) scale(${s})`);
    label.textContent = `${Math.round(s * 100)}%`;
    view.dataset.zoom = s.toFixed(3);
  };
  const fit = (byUser = false) => {
    const r = svg.getBoundingClientRect();
    if (!r.width || !r.height) return;
    if (byUser) moved = false;
    const room = r.height - TOOLBAR_H - FIT_PAD;
    s = Math.min(1, (r.width - 2 * FIT_PAD) / Math.max(size.w, 1), room / Math.max(size.h, 1));
    tx = (r.width - size.w * s) / 2;
    ty = TOOLBAR_H + (room - size.h * s) / 2;
    view.dataset.fitted = "true";
    apply();
  };
  const zoomAt = (factor, cx, cy) => {
    const next = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, s * factor));
    tx = cx - ((cx - tx) * next) / s;
    ty = cy - ((cy - ty) * next) / s;
    s = next;
    moved = true;
    view.dataset.fitted = "false";
    apply();
  };
  const step = (factor) => {
    const r = svg.getBoundingClientRect();
    zoomAt(factor, r.width / 2, r.height / 2);
  };
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    if (ev.ctrlKey || ev.metaKey) {
      zoomAt(Math.exp(-ev.deltaY * 0.002), ev.clientX - r.left, ev.clientY - r.top);
      return;
    }
    tx -= ev.deltaX;
    ty -= ev.deltaY;
    moved = true;
    view.dataset.fitted = "false";
    apply();
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || ev.target.closest("[data-step], [data-flow]")) return;
    drag = { x: ev.clientX - tx, y: ev.clientY - ty };
    svg.setPointerCapture(ev.pointerId);
    svg.classList.add("panning");
  });
  svg.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    tx = ev.clientX - drag.x;
    ty = ev.clientY - drag.y;
    moved = true;
    view.dataset.fitted = "false";
    apply();
  });
  const end = () => { drag = null; svg.classList.remove("panning"); };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
  new ResizeObserver(() => { if (!moved) fit(); }).observe(view);
  apply();
  return { fit, step };
}
