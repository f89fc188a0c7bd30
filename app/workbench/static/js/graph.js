// A layered left-to-right layout for one flow, drawn as SVG.
// Steps are placed in columns by longest path from the entry points (API and cron steps, and
// topics nobody emits); edges that span columns get invisible waypoints, and a few barycenter
// sweeps order each column so that edges cross as little as a cheap heuristic allows.
import { h, kindIcon } from "./core.js";

const NODE_W = 184;
const GAP_X = 112;
const GAP_Y = 26;
const SIZE = { api: 62, event: 62, cron: 62, topic: 40, foreign: 44, dummy: 8 };

// nodes: [{id, kind, label, sub, title, foreign, warn}], edges: [{from, to, label}]
export function layout(nodes, edges) {
  const byId = new Map(nodes.map((n) => [n.id, { ...n, preds: [], succs: [] }]));
  const links = mergeParallel(edges).filter((e) => byId.has(e.from) && byId.has(e.to));
  const acyclic = dropBackEdges(byId, links);
  for (const e of acyclic) {
    byId.get(e.from).succs.push(e.to);
    byId.get(e.to).preds.push(e.from);
  }
  assignLayers(byId);
  const segments = addWaypoints(byId, acyclic);
  const layers = [];
  for (const n of byId.values()) (layers[n.layer] ||= []).push(n);
  orderLayers(layers, byId);
  place(layers);
  const routed = links.map((e) => routeEdge(e, byId, segments));
  const width = Math.max(NODE_W, layers.length * (NODE_W + GAP_X) - GAP_X);
  const height = Math.max(...layers.map((l) => l.reduce((s, n) => s + n.h + GAP_Y, -GAP_Y)));
  return { nodes: [...byId.values()].filter((n) => n.kind !== "dummy"), edges: routed, width,
    height };
}

function mergeParallel(edges) {
  const merged = new Map();
  for (const e of edges) {
    const key = `${e.from}\u0000${e.to}`;
    if (merged.has(key)) merged.get(key).labels.push(e.label);
    else merged.set(key, { from: e.from, to: e.to, labels: [e.label] });
  }
  return [...merged.values()].map((e) => ({ ...e, label: [...new Set(e.labels)].join(", ") }));
}

function dropBackEdges(byId, links) {
  const out = new Map();
  for (const e of links) (out.get(e.from) || out.set(e.from, []).get(e.from)).push(e);
  const state = new Map();
  const keep = [];
  const visit = (id) => {
    state.set(id, "open");
    for (const e of out.get(id) || []) {
      const s = state.get(e.to);
      if (s === "open") { e.back = true; continue; }
      keep.push(e);
      if (!s) visit(e.to);
    }
    state.set(id, "done");
  };
  const roots = [...byId.values()].filter((n) => n.kind === "api" || n.kind === "cron");
  for (const n of [...roots, ...byId.values()]) if (!state.has(n.id)) visit(n.id);
  return keep;
}

function assignLayers(byId) {
  const memo = new Map();
  const depth = (id) => {
    if (memo.has(id)) return memo.get(id);
    memo.set(id, 0);
    const n = byId.get(id);
    const d = n.preds.length ? Math.max(...n.preds.map((p) => depth(p) + 1)) : 0;
    memo.set(id, d);
    return d;
  };
  for (const n of byId.values()) n.layer = depth(n.id);
  for (const n of byId.values()) n.h = SIZE[n.foreign ? "foreign" : n.kind] || SIZE.event;
}

function addWaypoints(byId, links) {
  for (const n of byId.values()) { n.preds = []; n.succs = []; }
  const segments = new Map();
  let k = 0;
  for (const e of links) {
    const a = byId.get(e.from);
    const b = byId.get(e.to);
    const chain = [a.id];
    for (let layer = a.layer + 1; layer < b.layer; layer++) {
      const id = `\u0000d${k++}`;
      byId.set(id, { id, kind: "dummy", layer, h: SIZE.dummy, preds: [], succs: [] });
      chain.push(id);
    }
    chain.push(b.id);
    for (let i = 0; i + 1 < chain.length; i++) {
      byId.get(chain[i]).succs.push(chain[i + 1]);
      byId.get(chain[i + 1]).preds.push(chain[i]);
    }
    segments.set(`${e.from}\u0000${e.to}`, chain);
  }
  return segments;
}

function orderLayers(layers, byId) {
  layers.forEach((layer) => layer.forEach((n, i) => { n.pos = i; }));
  const sweep = (layer, side) => {
    for (const n of layer) {
      const near = n[side].map((id) => byId.get(id).pos);
      n.bary = near.length ? near.reduce((a, b) => a + b, 0) / near.length : n.pos;
    }
    layer.sort((a, b) => a.bary - b.bary || a.pos - b.pos);
    layer.forEach((n, i) => { n.pos = i; });
  };
  for (let round = 0; round < 4; round++) {
    for (let i = 1; i < layers.length; i++) sweep(layers[i], "preds");
    for (let i = layers.length - 2; i >= 0; i--) sweep(layers[i], "succs");
  }
}

function place(layers) {
  const heights = layers.map((l) => l.reduce((s, n) => s + n.h + GAP_Y, -GAP_Y));
  const tallest = Math.max(...heights);
  layers.forEach((layer, i) => {
    let y = (tallest - heights[i]) / 2;
    for (const n of layer) {
      n.x = i * (NODE_W + GAP_X);
      n.y = y;
      y += n.h + GAP_Y;
    }
  });
}

function routeEdge(e, byId, segments) {
  const a = byId.get(e.from);
  const b = byId.get(e.to);
  if (e.back) {
    // A loop back: leave below the emitter, come in below the subscriber.
    const low = Math.max(a.y + a.h, b.y + b.h) + 18;
    const points = [[a.x + NODE_W / 2, a.y + a.h], [a.x + NODE_W / 2, low],
      [b.x + NODE_W / 2, low], [b.x + NODE_W / 2, b.y + b.h]];
    return { ...e, d: polyline(points), lx: (a.x + b.x + NODE_W) / 2, ly: low };
  }
  const chain = segments.get(`${e.from}\u0000${e.to}`).map((id) => byId.get(id));
  const points = chain.map((n, i) => {
    const x = n.kind === "dummy" ? n.x + NODE_W / 2 : (i === 0 ? n.x + NODE_W : n.x);
    return [x, n.y + n.h / 2];
  });
  if (chain.length > 2) {
    points.splice(1, 0, [chain[1].x, chain[1].y + chain[1].h / 2]);
    points.splice(points.length - 1, 0, [chain.at(-2).x + NODE_W, chain.at(-2).y + 4]);
  }
  let d = `M${points[0][0]},${points[0][1]}`;
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    const mid = (x0 + x1) / 2;
    d += ` C${mid},${y0} ${mid},${y1} ${x1},${y1}`;
  }
  const [x0, y0] = points[0];
  const [x1, y1] = points[1];
  return { ...e, d, lx: (x0 + x1) / 2, ly: (y0 + y1) / 2 };
}

function polyline(points) {
  return points.map(([x, y], i) => `${i ? "L" : "M"}${x},${y}`).join(" ");
}

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// Draws a layout; `onpick(id)` is called when a step node is clicked or activated by keyboard.
export function render(graph, { onpick, selected } = {}) {
  const pad = 24;
  const width = graph.width + pad * 2;
  const svg = h("svg:svg", {
    class: "graph", role: "img", "aria-label": "Flow graph",
    viewBox: `${-pad} ${-pad} ${width} ${graph.height + pad * 2 + 24}`,
  });
  // Shrink a wide flow to fit the pane, but never below a readable size: then it scrolls.
  svg.style.maxWidth = `${width}px`;
  svg.style.minWidth = `${Math.round(width * 0.72)}px`;
  svg.append(h("svg:defs", {}, h("svg:marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse",
  }, h("svg:path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));
  const edges = h("svg:g", { class: "edges" });
  const labels = h("svg:g", { class: "edge-labels" });
  for (const e of graph.edges) {
    edges.append(h("svg:path", { d: e.d, class: `edge${e.back ? " edge-back" : ""}`,
      "marker-end": "url(#arrow)" }, h("svg:title", {}, `${e.from} → ${e.to}: ${e.label}`)));
    if (!e.label) continue;
    const text = clip(e.label, 28);
    const w = text.length * 6.4 + 10;
    labels.append(h("svg:g", { class: "edge-label", transform: `translate(${e.lx},${e.ly})` },
      h("svg:rect", { x: -w / 2, y: -9, width: w, height: 18, rx: 9 }),
      h("svg:text", { "text-anchor": "middle", y: 4 }, text),
      h("svg:title", {}, e.label)));
  }
  const nodes = h("svg:g", { class: "nodes" });
  for (const n of graph.nodes) nodes.append(drawNode(n, onpick, selected));
  svg.append(edges, nodes, labels);
  return svg;
}

function drawNode(n, onpick, selected) {
  const cls = ["node", `node-${n.kind}`, n.foreign && "node-foreign", n.warn && "node-warn",
    n.id === selected && "node-selected"].filter(Boolean).join(" ");
  const g = h("svg:g", { class: cls, transform: `translate(${n.x},${n.y})`,
    dataset: { step: n.kind === "topic" ? "" : n.id } });
  if (n.kind === "topic") {
    g.append(h("svg:rect", { width: NODE_W, height: n.h, rx: n.h / 2 }),
      h("svg:text", { x: NODE_W / 2, y: 17, "text-anchor": "middle", class: "topic" },
        `⚠ ${clip(n.label, 24)}`),
      h("svg:text", { x: NODE_W / 2, y: 31, "text-anchor": "middle", class: "topic-why" },
        n.sub || ""), h("svg:title", {}, n.title));
    return g;
  }
  g.setAttribute("tabindex", "0");
  g.setAttribute("role", "button");
  g.setAttribute("aria-label", `${n.kind} step ${n.id}`);
  const rx = n.kind === "api" ? 16 : 5;
  g.append(h("svg:rect", { width: NODE_W, height: n.h, rx }));
  if (n.kind === "cron") g.append(h("svg:rect", { class: "inner", x: 3, y: 3,
    width: NODE_W - 6, height: n.h - 6, rx: 3 }));
  g.append(
    h("svg:text", { x: 12, y: 18, class: "kind" }, `${kindIcon(n.kind)} ${n.kind.toUpperCase()}`),
    h("svg:text", { x: 12, y: 36, class: "name" }, clip(n.label, 22)),
    h("svg:text", { x: 12, y: 52, class: "sub" }, clip(n.sub || "", 27)),
    h("svg:title", {}, n.title || n.id),
  );
  if (onpick) {
    g.addEventListener("click", () => onpick(n.id));
    g.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onpick(n.id); }
    });
  }
  return g;
}
