// State: groups and keys with pretty values and TTLs; edit, add and delete (with confirmation).
import {
  api, clear, confirmDialog, errorBox, fmtTtl, h, toast,
} from "./core.js";

const MASK = "***";
// Values are shown as JSON so that "1" and 1 look different and an edit round-trips.
const asJson = (value) => JSON.stringify(value, null, 2);

export async function mount(root, args) {
  const { groups } = await api("/state");
  const group = args[0] || groups[0];
  const side = h("aside", { class: "sidebar" }, h("h2", {}, `Groups (${groups.length})`),
    h("ul", { class: "flow-list" }, groups.map((g) => h("li", {},
      h("a", { href: `#/state/${encodeURIComponent(g)}`, class: g === group ? "active" : "" }, g)))),
    newGroupForm());
  const panel = h("section", { class: "state-panel" });
  clear(root, h("div", { class: "split" }, side, panel));
  if (!group) {
    panel.append(h("h1", {}, "State"), h("p", { class: "muted" },
      "No state yet. Steps write it with ctx.state.set(group, key, value)."));
    return null;
  }
  await renderGroup(panel, group);
  return null;
}

function newGroupForm() {
  const input = h("input", { name: "group", placeholder: "new group", "aria-label": "New group" });
  return h("form", { class: "inline-form", onsubmit: (ev) => {
    ev.preventDefault();
    if (input.value.trim()) location.hash = `#/state/${encodeURIComponent(input.value.trim())}`;
  } }, input, h("button", { type: "submit", class: "secondary" }, "Open"));
}

async function renderGroup(panel, group) {
  let data;
  try {
    data = await api(`/state/${encodeURIComponent(group)}`);
  } catch (err) {
    clear(panel, errorBox(err));
    return;
  }
  const reload = () => renderGroup(panel, group);
  const rows = data.keys.sort((a, b) => a.key.localeCompare(b.key)).map((item) =>
    keyRow(group, item, reload));
  clear(panel,
    h("div", { class: "view-head" }, h("h1", {}, "State: ", h("span", { class: "mono" }, group)),
      h("button", { class: "secondary", onclick: reload }, "Refresh")),
    h("table", { class: "table state" },
      h("thead", {}, h("tr", {}, ["Key", "Value", "TTL", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.length ? rows
        : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "This group has no live keys.")))),
    h("h3", {}, "Add a key"), editor(group, null, reload));
}

function keyRow(group, item, reload) {
  const masked = item.value === MASK;
  const cell = h("td", { class: "value" },
    h("pre", { class: "code" }, masked ? MASK : asJson(item.value)),
    masked ? h("span", { class: "small muted" }, "masked: looks like a secret") : null);
  const tr = h("tr", { dataset: { key: item.key } },
    h("td", { class: "mono key" }, item.key), cell,
    h("td", { class: "small" }, fmtTtl(item.ttl)),
    h("td", { class: "row-actions" },
      h("button", { class: "secondary", onclick: () => {
        clear(cell, editor(group, item, reload, () => clear(cell,
          h("pre", { class: "code" }, masked ? MASK : asJson(item.value)))));
      } }, "Edit"),
      h("button", { class: "danger", onclick: async () => {
        if (!await confirmDialog(`Delete key “${item.key}” from group “${group}”?`, "Delete")) return;
        try {
          await api(`/state/${encodeURIComponent(group)}/${encodeURIComponent(item.key)}`,
            { method: "DELETE" });
          toast(`Deleted ${item.key}`);
          reload();
        } catch (err) { toast(err.message, "error"); }
      } }, "Delete")));
  return tr;
}

// Edits an existing key (item) or adds a new one (item null).
function editor(group, item, reload, cancel) {
  const masked = item && item.value === MASK;
  const key = h("input", { name: "key", class: "mono", placeholder: "key", required: true,
    value: item ? item.key : "", readonly: Boolean(item) });
  const value = h("textarea", { name: "value", class: "mono", rows: 6, spellcheck: "false" });
  value.value = item && !masked ? asJson(item.value) : "";
  const ttl = h("input", { name: "ttl", type: "number", min: "1", step: "any",
    placeholder: "none", value: item && item.ttl ? String(Math.round(item.ttl)) : "" });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const save = async (ev) => {
    ev.preventDefault();
    let parsed;
    try {
      parsed = JSON.parse(value.value);
    } catch (err) {
      problem.hidden = false;
      problem.textContent = `Not valid JSON (${err.message}). Strings need double quotes.`;
      return;
    }
    const body = { value: parsed, ttl: ttl.value ? Number(ttl.value) : null };
    try {
      await api(`/state/${encodeURIComponent(group)}/${encodeURIComponent(key.value.trim())}`,
        { method: "PUT", json: body });
      toast(`Saved ${key.value.trim()}`);
      reload();
    } catch (err) {
      problem.hidden = false;
      problem.textContent = err.message;
    }
  };
  return h("form", { class: "state-editor", onsubmit: save },
    item ? null : h("label", { class: "field" }, h("span", {}, "Key"), key),
    masked ? h("p", { class: "small warn" },
      "The current value is masked; saving replaces it with what you type.") : null,
    h("label", { class: "field" }, h("span", {}, "Value (JSON)"), value),
    h("label", { class: "field narrow" }, h("span", {}, "TTL (seconds)"), ttl),
    problem,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save"),
      cancel ? h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel")
        : null));
}
