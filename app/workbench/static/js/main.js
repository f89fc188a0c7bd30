// The router: one view at a time, chosen by the URL hash (#/traces/<id>, #/state/<group>...).
import { api, clear, errorBox, h } from "./core.js";
import * as endpoints from "./endpoints.js";
import * as events from "./events.js";
import * as flows from "./flows.js";
import * as logs from "./logs.js";
import * as state from "./state.js";
import * as streams from "./streams.js";
import * as traces from "./traces.js";

const VIEWS = { flows, endpoints, traces, logs, state, events, streams };
const TITLES = {
  flows: "Flows", endpoints: "Endpoints", traces: "Traces", logs: "Logs", state: "State",
  events: "Events", streams: "Streams",
};
let cleanup = null;
let generation = 0;

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const name = VIEWS[parts[0]] ? parts[0] : "flows";
  return { name, args: parts.slice(1), query: new URLSearchParams(query) };
}

async function route() {
  const { name, args, query } = parseHash();
  const mine = ++generation;
  if (cleanup) {
    try { cleanup(); } catch (err) { console.warn(err); }
    cleanup = null;
  }
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.view === name);
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${TITLES[name]} · Stepline Workbench`;
  const main = document.getElementById("view");
  main.dataset.view = name;
  // Each visit renders into its own element, so a slow view that finishes after the user left
  // writes into a detached node instead of over the next view.
  const root = h("div", { class: "view-host" });
  clear(main, root);
  try {
    const stop = (await VIEWS[name].mount(root, args, query)) || null;
    // The user may have moved on while this view loaded: stop it rather than leak its timers.
    if (mine === generation) cleanup = stop;
    else if (stop) stop();
  } catch (err) {
    if (mine === generation) clear(root, h("h1", {}, TITLES[name]), errorBox(err));
  }
}

window.addEventListener("hashchange", route);
route();
// "Sign out" only where there is a sign-in: `start` with STEPLINE_WORKBENCH_TOKEN.
api("/workbench/api/session").then((s) => {
  document.querySelector("form.logout").hidden = !s.sign_in;
}).catch(() => {});
