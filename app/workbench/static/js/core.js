// Shared helpers: DOM building (never innerHTML with data), the admin API, formatting.

export const API = "/_stepline";

// h("div", {class: "x", onclick: fn}, child, "text") -> Element. Text is always a text node.
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" && !svg) {
      el.value = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Calls the admin API; errors carry the server's one-line reason.
export async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: {}, ...options };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers = { "content-type": "application/json", ...init.headers };
    delete init.json;
  }
  const url = path.startsWith("/") && !path.startsWith(API) && !path.startsWith("/workbench")
    ? API + path : path;
  const response = await fetch(url, init);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (response.status === 401) {
    window.location.assign("/workbench");
  }
  if (!response.ok) {
    const reason = body && typeof body === "object" && body.error ? body.error : text;
    throw new ApiError(response.status, `${response.status}: ${reason}`);
  }
  return body;
}

// A cache for the step list: every view needs it and it only changes on reload.
let stepsPromise = null;
export function steps(refresh = false) {
  if (refresh || !stepsPromise) {
    stepsPromise = api("/steps").catch((err) => { stepsPromise = null; throw err; });
  }
  return stepsPromise;
}

export function pretty(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

// "1 delivery", "2 deliveries": `many` defaults to `one` + "s".
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export function fmtTime(ts) {
  if (!ts) return "";
  const d = new Date(ts * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const today = new Date().toDateString() === d.toDateString();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    `.${pad(d.getMilliseconds(), 3)}`;
  return today ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

export function fmtTtl(seconds) {
  if (seconds === null || seconds === undefined) return "no expiry";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${String(kind).replace(/[^a-z_-]/gi, "")}` }, text);
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    message);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 3500);
}

// A styled confirmation (window.confirm cannot be styled and blocks the page).
export function confirmDialog(text, okLabel = "Confirm") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err instanceof Error ? err.message : String(err));
}

// Runs `fn` now and every `ms` while the page is visible; returns a stop function.
export function every(ms, fn) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch (err) { console.warn(err); }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

export function select(name, label, options, value, onchange) {
  return h("label", { class: "field" }, h("span", {}, label),
    h("select", { name, onchange },
      options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

// Trace ids are 128 random bits: the first 8 and last 4 hex characters tell rows apart at a
// glance, and 8 is the shortest prefix the Logs filter accepts, so what is shown can be typed.
export function shortTraceId(traceId) {
  return traceId.length > 14 ? `${traceId.slice(0, 8)}…${traceId.slice(-4)}` : traceId;
}

// A link to the trace, its full id in the tooltip, and a button that copies the full id.
export function traceLink(traceId, text) {
  return h("span", { class: "trace-ref" },
    h("a", { href: `#/traces/${encodeURIComponent(traceId)}`, class: "mono", title: traceId },
      text || shortTraceId(traceId)),
    copyButton(traceId, "Copy the full trace id"));
}

export function copyButton(value, label) {
  const button = h("button", { type: "button", class: "copy", title: label, "aria-label": label,
    dataset: { copy: value }, onclick: async (ev) => {
      // Inside a clickable table row: copying must not also open the row.
      ev.preventDefault();
      ev.stopPropagation();
      const done = await copyText(value);
      button.textContent = done ? "✓" : "!";
      button.title = done ? "Copied" : `Copy failed; the id is ${value}`;
      setTimeout(() => { button.replaceChildren(copyIcon()); button.title = label; }, 1500);
    } }, copyIcon());
  return button;
}

// Drawn in CSS: a glyph such as U+29C9 is missing from common fonts (DejaVu) and shows as a box.
function copyIcon() {
  return h("span", { class: "copy-icon", "aria-hidden": "true" });
}

async function copyText(value) {
  try {
    await navigator.clipboard.writeText(value);
    return true;
  } catch {
    // No Clipboard API outside a secure context (plain http to a non-local host).
    const area = h("textarea", { class: "offscreen", readonly: true }, value);
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

export function kindIcon(kind) {
  return { api: "⇄", event: "◆", cron: "◷" }[kind] || "•";
}
