// A layered (Sugiyama) layout for one flow, top to bottom (or left to right).
//
// Steps and topics are both boxes: a topic sits in its own column between the steps that emit
// it and the steps that subscribe to it, so a topic's name takes room in the layout instead of
// being painted over it. Every box has the size its text needs (measured by the caller), each
// column is as wide as its widest box, and boxes in a column are stacked with a gap, so no two
// boxes can overlap. An edge spanning several columns passes through invisible waypoints that
// hold their own slot in each column, and every edge curve stays inside the gap between two
// columns: edges run around boxes, never through them. A cycle is laid out with its closing
// edge reversed and drawn with the arrow at its start.
//
// The code speaks of columns (layers along x) and stacks (order along y); top to bottom is the
// same layout with the axes swapped, which suits flows: they are long chains, and topic boxes
// are short, so layers of them stack tightly.

const GAP_X = 32;
const GAP_Y = 22;
const WAYPOINT_H = 10;
const ROUNDS = 10;

// nodes: [{id, w, h, entry?}], edges: [{from, to}] -> {nodes (with x, y), edges (with d),
// width, height}. `across: true` lays layers out left to right instead of top to bottom.
export function layout(nodes, edges, { across = false } = {}) {
  const flip = !across;
  const byId = new Map(nodes.map((n) => [n.id, { ...n, w: flip ? n.h : n.w, h: flip ? n.w : n.h,
    preds: [], succs: [] }]));
  const links = unique(edges).filter((e) => byId.has(e.from) && byId.has(e.to)
    && e.from !== e.to);
  markBackEdges(byId, links);
  const forward = links.map((e) => (e.back ? { ...e, from: e.to, to: e.from } : { ...e }));
  for (const e of forward) {
    byId.get(e.from).succs.push(e.to);
    byId.get(e.to).preds.push(e.from);
  }
  assignLayers(byId);
  const chains = addWaypoints(byId, forward);
  const layers = [];
  for (const n of byId.values()) (layers[n.layer] ||= []).push(n);
  for (let i = 0; i < layers.length; i++) layers[i] ||= [];
  orderLayers(layers, byId);
  const columns = placeX(layers);
  placeY(layers, byId);
  const pt = flip ? (x, y) => `${y},${x}` : (x, y) => `${x},${y}`;
  const routed = forward.map((e, i) => route(e, chains[i], columns, pt));
  const real = [...byId.values()].filter((n) => !n.waypoint).map((n) => (flip
    ? { ...n, x: n.y, y: n.x, w: n.h, h: n.w } : n));
  const long = columns.length ? columns.at(-1).right : 0;
  const wide = Math.max(0, ...[...byId.values()].map((n) => n.y + n.h));
  return { nodes: real, edges: routed, width: flip ? wide : long, height: flip ? long : wide };
}

function unique(edges) {
  const seen = new Map();
  for (const e of edges) seen.set(`${e.from}\u0000${e.to}`, e);
  return [...seen.values()];
}

// Depth-first from the entry points (API and cron steps first); an edge back into a node on
// the current path closes a cycle.
function markBackEdges(byId, links) {
  const out = new Map();
  for (const e of links) (out.get(e.from) || out.set(e.from, []).get(e.from)).push(e);
  const state = new Map();
  const visit = (id) => {
    state.set(id, "open");
    for (const e of out.get(id) || []) {
      const s = state.get(e.to);
      if (s === "open") e.back = true;
      else if (!s) visit(e.to);
    }
    state.set(id, "done");
  };
  const incoming = new Set(links.map((e) => e.to));
  const all = [...byId.values()];
  const roots = [...all.filter((n) => n.entry), ...all.filter((n) => !incoming.has(n.id))];
  for (const n of [...roots, ...all]) if (!state.has(n.id)) visit(n.id);
}

// Longest path from the sources, then each source moves right next to its first successor,
// so a topic nobody emits sits beside the step it feeds rather than in column one.
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
  for (const n of byId.values()) {
    if (!n.preds.length && n.succs.length && !n.entry) {
      n.layer = Math.max(0, Math.min(...n.succs.map((s) => byId.get(s).layer)) - 1);
    }
  }
}

function addWaypoints(byId, forward) {
  for (const n of byId.values()) { n.preds = []; n.succs = []; }
  let k = 0;
  return forward.map((e) => {
    const a = byId.get(e.from);
    const b = byId.get(e.to);
    const chain = [a];
    for (let layer = a.layer + 1; layer < b.layer; layer++) {
      const id = `\u0000w${k++}`;
      const w = { id, waypoint: true, layer, w: 0, h: WAYPOINT_H, preds: [], succs: [] };
      byId.set(id, w);
      chain.push(w);
    }
    chain.push(b);
    for (let i = 0; i + 1 < chain.length; i++) {
      chain[i].succs.push(chain[i + 1].id);
      chain[i + 1].preds.push(chain[i].id);
    }
    return chain;
  });
}

// Barycenter sweeps, keeping the order with the fewest crossings seen.
function orderLayers(layers, byId) {
  layers.forEach((layer) => layer.forEach((n, i) => { n.pos = i; }));
  let best = layers.map((l) => [...l]);
  let bestCrossings = crossings(layers, byId);
  const sweep = (layer, side) => {
    for (const n of layer) {
      const near = n[side].map((id) => byId.get(id).pos);
      n.bary = near.length ? near.reduce((a, b) => a + b, 0) / near.length : n.pos;
    }
    layer.sort((a, b) => a.bary - b.bary || a.pos - b.pos);
    layer.forEach((n, i) => { n.pos = i; });
  };
  for (let round = 0; round < ROUNDS && bestCrossings > 0; round++) {
    for (let i = 1; i < layers.length; i++) sweep(layers[i], "preds");
    for (let i = layers.length - 2; i >= 0; i--) sweep(layers[i], "succs");
    const now = crossings(layers, byId);
    if (now < bestCrossings) {
      bestCrossings = now;
      best = layers.map((l) => [...l]);
    }
  }
  best.forEach((layer, i) => {
    layers[i] = layer;
    layer.forEach((n, j) => { n.pos = j; });
  });
}

function crossings(layers, byId) {
  let count = 0;
  for (const layer of layers) {
    const segs = [];
    for (const n of layer) for (const s of n.succs) segs.push([n.pos, byId.get(s).pos]);
    for (let i = 0; i < segs.length; i++) {
      for (let j = i + 1; j < segs.length; j++) {
        const [a1, b1] = segs[i];
        const [a2, b2] = segs[j];
        if ((a1 - a2) * (b1 - b2) < 0) count++;
      }
    }
  }
  return count;
}

function placeX(layers) {
  const columns = [];
  let x = 0;
  for (const layer of layers) {
    const width = Math.max(0, ...layer.map((n) => n.w));
    columns.push({ left: x, right: x + width });
    for (const n of layer) n.x = x + (width - n.w) / 2;
    x += width + GAP_X;
  }
  return columns;
}

// Boxes start stacked in their order; then each column moves its boxes toward the centres of
// their neighbours, as close as the order and the gaps allow (a least-squares fit under
// "stay in order, keep the gap", solved by pooling adjacent violators).
function placeY(layers, byId) {
  for (const layer of layers) {
    let y = 0;
    for (const n of layer) { n.y = y; y += n.h + GAP_Y; }
  }
  const centre = (id) => { const n = byId.get(id); return n.y + n.h / 2; };
  for (let round = 0; round < 2 * ROUNDS; round++) {
    const down = round % 2 === 0;
    const order = down ? layers : [...layers].reverse();
    for (const layer of order) {
      const want = [];
      layer.forEach((n, i) => {
        const near = [...n.preds, ...n.succs];
        if (near.length) want.push(near.reduce((sum, id) => sum + centre(id), 0) / near.length);
        // A box with no edges packs up against the one before it instead of holding space.
        else if (i > 0) want.push(want[i - 1] + layer[i - 1].h / 2 + GAP_Y + n.h / 2);
        else want.push(n.y + n.h / 2);
      });
      fitInOrder(layer, want);
    }
  }
  const top = Math.min(...[...byId.values()].map((n) => n.y));
  for (const n of byId.values()) n.y -= top;
}

function fitInOrder(layer, want) {
  // Offsets make "in order with gaps" a plain non-decreasing constraint on z = y - offset.
  const offsets = [];
  let acc = 0;
  for (const n of layer) { offsets.push(acc); acc += n.h + GAP_Y; }
  const blocks = [];
  layer.forEach((n, i) => {
    blocks.push({ sum: want[i] - n.h / 2 - offsets[i], count: 1, from: i, to: i });
    while (blocks.length > 1) {
      const b = blocks.at(-1);
      const a = blocks.at(-2);
      if (a.sum / a.count <= b.sum / b.count) break;
      blocks.splice(-2, 2, { sum: a.sum + b.sum, count: a.count + b.count, from: a.from,
        to: b.to });
    }
  });
  for (const b of blocks) {
    const z = b.sum / b.count;
    for (let i = b.from; i <= b.to; i++) layer[i].y = z + offsets[i];
  }
}

// Leave the box at its right edge, cross the rest of its column level with it, curve through
// the gap, enter the next column level with the target; waypoints cross their column level.
// `pt` writes a point, swapping the axes for a top-to-bottom drawing.
function route(e, chain, columns, pt) {
  const first = chain[0];
  let y = first.y + first.h / 2;
  let d = `M${pt(first.x + first.w, y)} L${pt(columns[first.layer].right, y)}`;
  let x = columns[first.layer].right;
  for (let i = 1; i < chain.length; i++) {
    const n = chain[i];
    const left = columns[n.layer].left;
    const ny = n.y + n.h / 2;
    const mid = (x + left) / 2;
    // Between two waypoints a straight run reads better than a row of small S-bends.
    if (chain[i - 1].waypoint && n.waypoint) d += ` L${pt(left, ny)}`;
    else d += ` C${pt(mid, y)} ${pt(mid, ny)} ${pt(left, ny)}`;
    x = n.waypoint ? columns[n.layer].right : n.x;
    y = ny;
    d += ` L${pt(x, y)}`;
  }
  return { ...e, from: e.back ? e.to : e.from, to: e.back ? e.from : e.to, d };
}
