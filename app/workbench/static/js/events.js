// Events: queue figures per step, unsettled deliveries, scheduled ones by due time, dead letters
// (inspect, replay), emit.
import {
  api, badge, clear, confirmDialog, every, fmtTime, h, plural, pretty, steps, toast, traceLink,
} from "./core.js";

export async function mount(root) {
  const catalog = await steps();
  const stats = h("tbody", {});
  const queued = h("tbody", {});
  const scheduled = h("tbody", {});
  const scheduledCount = h("span", { class: "count" }, "0");
  const dead = h("tbody", {});
  const deadCount = h("span", { class: "count" }, "0");
  const open = new Set();
  const replayAll = h("button", { class: "danger", onclick: async () => {
    if (!await confirmDialog("Replay every dead letter? Each goes back to its step's queue.",
      "Replay all")) return;
    await replay(null);
  } }, "Replay all");
  async function replay(ids) {
    try {
      const out = await api("/events/replay", { method: "POST", json: { ids } });
      toast(`Replayed ${plural(out.replayed, "delivery", "deliveries")}`);
      last = "";
      await refresh();
    } catch (err) { toast(err.message, "error"); }
  }
  clear(root,
    h("div", { class: "view-head" }, h("h1", {}, "Events")),
    h("div", { class: "events-grid" },
      h("section", {}, h("h2", {}, "Queues by step"),
        h("table", { class: "table compact" }, h("thead", {}, h("tr", {},
          ["Step", "Queued", "Scheduled", "In flight", "Dead"].map((t) => h("th", {}, t)))), stats)),
      emitForm(catalog)),
    h("section", {}, h("h2", {}, "Queued and in flight"),
      h("table", { class: "table compact" }, h("thead", {}, h("tr", {},
        ["Created", "Step", "Topic", "Status (due)", "Attempt", "Trace"].map((t) => h("th", {}, t)))),
      queued)),
    // Its own list, soonest first: the one above is the oldest 200 by id, so behind a backlog a
    // delayed emit or retry would show only in the counts.
    h("section", { class: "scheduled" }, h("h2", {}, "Scheduled ", scheduledCount),
      h("table", { class: "table compact scheduled" }, h("thead", {}, h("tr", {},
        ["Due", "Step", "Topic", "Created", "Attempt", "Trace"].map((t) => h("th", {}, t)))),
      scheduled)),
    h("section", { class: "dead" }, h("div", { class: "view-head" },
      h("h2", {}, "Dead letters ", deadCount), replayAll),
    h("table", { class: "table dead-letters" },
      // Fixed columns: a long error shortens itself instead of pushing the buttons off-screen.
      h("colgroup", {}, ["failed", "step", "topic", "attempts", "error", "trace", "actions"]
        .map((c) => h("col", { class: `col-${c}` }))),
      h("thead", {}, h("tr", {},
        ["Failed", "Step", "Topic", "Tries", "Error", "Trace", ""].map((t) => h("th", {}, t)))),
    dead)));

  let last = "";
  const refresh = async () => {
    const data = await api("/events?limit=200");
    const key = JSON.stringify(data);
    if (key === last) return;
    last = key;
    const names = Object.keys(data.stats).sort();
    clear(stats, names.length ? names.map((n) => {
      const s = data.stats[n];
      return h("tr", {}, h("td", {}, n), h("td", {}, String(s.queued)),
        h("td", {}, String(s.scheduled)), h("td", {}, String(s.in_flight)),
        h("td", { class: s.dead ? "bad" : "" }, String(s.dead)));
    }) : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No deliveries yet.")));
    clear(queued, data.queued.length ? data.queued.map((q) => h("tr", {},
      h("td", {}, fmtTime(q.created_at)), h("td", {}, q.step), h("td", { class: "mono" }, q.topic),
      h("td", {}, badge(q.status),
        q.status === "scheduled" || q.due >= 1e17 ? dueText(q.due) : ""),
      h("td", {}, String(q.attempt)),
      h("td", {}, traceLink(q.trace_id))))
      : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "Nothing waiting.")));
    const later = data.scheduled || [];
    const total = names.reduce((n, name) => n + (data.stats[name].scheduled || 0), 0);
    scheduledCount.textContent = total > later.length ? `${later.length} of ${total}`
      : String(later.length);
    clear(scheduled, later.length ? later.map((q) => h("tr", { dataset: { delivery: q.id } },
      h("td", { class: "due" }, badge("scheduled"), dueText(q.due)), h("td", {}, q.step),
      h("td", { class: "mono" }, q.topic), h("td", {}, fmtTime(q.created_at)),
      h("td", {}, String(q.attempt)), h("td", {}, traceLink(q.trace_id))))
      : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "Nothing scheduled.")));
    deadCount.textContent = String(data.dead.length);
    replayAll.disabled = !data.dead.length;
    clear(dead, data.dead.length ? data.dead.map((d) => deadRows(d, open, replay))
      : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No dead letters.")));
  };
  return every(2500, refresh);
}

function deadRows(d, open, replay) {
  const detail = h("tr", { class: "inspect", hidden: !open.has(d.id) },
    h("td", { colspan: 7 },
      h("div", { class: "inspect-grid" },
        h("div", {}, h("h4", {}, "Payload"), h("pre", { class: "code" }, pretty(d.data))),
        h("div", {}, h("h4", {}, "Error"), h("pre", { class: "code span-error" }, d.error),
          h("details", {}, h("summary", {}, "Traceback"),
            h("pre", { class: "code" }, d.traceback || "(none)"))))));
  const row = h("tr", { dataset: { dead: d.id } },
    h("td", {}, fmtTime(d.failed_at)), h("td", {}, d.step), h("td", { class: "mono" }, d.topic),
    h("td", {}, String(d.attempts)), h("td", { class: "error-cell", title: d.error }, d.error),
    h("td", {}, traceLink(d.trace_id)),
    h("td", { class: "row-actions" },
      h("button", { class: "secondary", onclick: () => {
        detail.hidden = !detail.hidden;
        if (detail.hidden) open.delete(d.id); else open.add(d.id);
      } }, "Inspect"),
      h("button", { onclick: () => replay([d.id]) }, "Replay")));
  return [row, detail];
}

function emitForm(catalog) {
  const topics = [...new Set(catalog.steps.flatMap((s) => s.subscribes || []))].sort();
  const topic = h("input", { name: "topic", list: "emit-topics", required: true,
    class: "mono", placeholder: "topic" });
  const data = h("textarea", { name: "data", class: "mono", rows: 4, spellcheck: "false" });
  const delay = h("input", { name: "delay", type: "number", min: "0", step: "any",
    placeholder: "now" });
  data.value = "{}";
  const result = h("p", { class: "small", "aria-live": "polite" });
  return h("section", {}, h("h2", {}, "Emit an event"),
    h("form", { class: "emit-form", onsubmit: async (ev) => {
      ev.preventDefault();
      let value;
      try { value = JSON.parse(data.value || "null"); } catch (err) {
        clear(result, h("span", { class: "error" }, `Data is not valid JSON: ${err.message}`));
        return;
      }
      try {
        const body = { topic: topic.value.trim(), data: value };
        if (delay.value !== "") body.delay = Number(delay.value);
        const out = await api("/emit", { method: "POST", json: body });
        clear(result, "Emitted; trace ", traceLink(out.trace_id, out.trace_id));
      } catch (err) { clear(result, h("span", { class: "error" }, err.message)); }
    } },
    h("label", { class: "field" }, h("span", {}, "Topic"), topic,
      h("datalist", { id: "emit-topics" }, topics.map((t) => h("option", { value: t })))),
    h("label", { class: "field" }, h("span", {}, "Data (JSON)"), data),
    h("label", { class: "field" }, h("span", {}, "Delay (seconds)"), delay),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Emit")), result));
}

// A delayed emit, a retry or a debounced delivery: when it runs. (Redis parks a delivery that
// waits for its ordering key's turn at a time no clock reaches.)
function dueText(due) {
  if (typeof due !== "number") return "";
  if (due >= 1e17) return " waits for its key";
  const s = Math.round(due - Date.now() / 1000);
  const left = s < 1 ? "now" : s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min`
    : `${Math.round(s / 3600)} h`;
  return ` ${fmtTime(due)} (in ${left})`;
}
