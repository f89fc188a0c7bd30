// Streams: a live view of the messages handlers push with ctx.stream(name, data).
import { clear, fmtTime, h, pretty, traceLink } from "./core.js";

const MAX_MESSAGES = 500;
const RECENT = "stepline.streams";

export async function mount(root, args, query) {
  const recent = JSON.parse(localStorage.getItem(RECENT) || "[]");
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
    list);
  if (name.value) connect();
  return () => { if (source) source.close(); };
}
