// Streams: a live view of the messages handlers push with ctx.stream(name, data).
import { api, clear, fmtTime, h, pretty, traceLink } from "./core.js";

const MAX_MESSAGES = 500;
const RECENT = "stepline.streams";
const LAST = "stepline.streams.last";

export async function mount(root, args, query) {
  const recent = JSON.parse(localStorage.getItem(RECENT) || "[]");
  const last = JSON.parse(localStorage.getItem(LAST) || "{}");
  const known = (await api("/workbench/api/streams")).streams;
  const name = h("input", { name: "stream", class: "mono", required: true,
    placeholder: "stream name", value: args[0] || "", list: "recent-streams" });
  const trace = h("input", { name: "trace_id", class: "mono", placeholder: "any trace",
    value: query.get("trace_id") || "" });
  const list = h("ol", { class: "stream-messages", reversed: true });
  const status = h("span", { class: "live", "data-state": "idle" }, "not connected");
  let source = null;
  const connect = () => {
    if (source) source.close();
    const stream = name.value.trim();
    if (!stream) return;
    const qs = trace.value.trim() ? `?trace_id=${encodeURIComponent(trace.value.trim())}` : "";
    const hash = `#/streams/${encodeURIComponent(stream)}${qs}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
    localStorage.setItem(RECENT, JSON.stringify([stream, ...recent.filter((r) => r !== stream)]
      .slice(0, 10)));
    clear(list);
    status.dataset.state = "connecting";
    status.textContent = "connecting…";
    source = new EventSource(`/streams/${encodeURIComponent(stream)}${qs}`);
    source.addEventListener("open", () => {
      status.dataset.state = "live";
      status.textContent = `live: ${stream}`;
    });
    source.addEventListener("error", () => {
      status.dataset.state = "down";
      status.textContent = "reconnecting…";
    });
    // The server names each event after its stream.
    source.addEventListener(stream, (ev) => {
      const msg = JSON.parse(ev.data);
      last[stream] = msg.ts || Date.now() / 1000;
      localStorage.setItem(LAST, JSON.stringify(last));
      list.prepend(h("li", { class: "stream-message" },
        h("div", { class: "small muted" }, fmtTime(msg.ts || Date.now() / 1000),
          msg.trace_id ? [" · trace ", traceLink(msg.trace_id)] : null,
          msg.step ? ` · ${msg.step}` : null),
        h("pre", { class: "code" }, pretty("data" in msg ? msg.data : msg))));
      while (list.children.length > MAX_MESSAGES) list.lastElementChild.remove();
    });
  };
  clear(root,
    h("div", { class: "view-head" }, h("h1", {}, "Streams ", status),
      h("form", { class: "filters", onsubmit: (ev) => { ev.preventDefault(); connect(); } },
        h("label", { class: "field" }, h("span", {}, "Stream"), name,
          h("datalist", { id: "recent-streams" }, recent.map((r) => h("option", { value: r })))),
        h("label", { class: "field" }, h("span", {}, "Trace id"), trace),
        h("button", { type: "submit" }, "Watch"))),
    h("p", { class: "muted small" },
      "Messages pushed with ctx.stream(name, data) appear here as they happen, newest first."),
    streamTable(known, recent, last, args[0]),
    list);
  if (name.value) connect();
  return () => { if (source) source.close(); };
}

// Streams the steps push to, those the server has seen a message on, and those watched here
// before; "last message" is the newest the server pushed since it started, or this browser saw.
function streamTable(known, recent, seen, current) {
  const rows = new Map(known.map((k) => [k.name, k.steps.join(", ") || "(named at run time)"]));
  const last = { ...seen };
  for (const k of known) if (k.last && !(last[k.name] > k.last)) last[k.name] = k.last;
  for (const r of recent) if (!rows.has(r)) rows.set(r, "(watched before)");
  if (!rows.size) {
    return h("p", { class: "muted" }, "No step pushes to a stream yet: call "
      + "ctx.stream(name, data) in a handler.");
  }
  return h("table", { class: "table compact streams" },
    h("thead", {}, h("tr", {}, ["Stream", "Pushed by", "Last message"].map((t) =>
      h("th", {}, t)))),
    h("tbody", {}, [...rows].sort().map(([name, by]) => h("tr", {
      class: name === current ? "active" : "", dataset: { stream: name } },
    h("td", {}, h("a", { class: "mono", href: `#/streams/${encodeURIComponent(name)}` }, name)),
    h("td", { class: "small" }, by),
    h("td", { class: "small" }, last[name] ? fmtTime(last[name]) : "—")))));
}
