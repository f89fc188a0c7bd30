// Endpoints: every API step with its route and body schema, and a form that calls it.
import { badge, clear, fmtMs, h, pretty, steps, traceLink } from "./core.js";

export async function mount(root, _args, query) {
  const catalog = await steps();
  const apis = catalog.steps.filter((s) => s.type === "api")
    .sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
  const picked = apis.find((s) => s.name === query.get("step")) || apis[0];
  const list = h("ul", { class: "endpoint-list" });
  const panel = h("section", { class: "endpoint-panel" });
  const show = (step) => {
    for (const li of list.children) li.classList.toggle("active", li.dataset.name === step.name);
    history.replaceState(null, "", `#/endpoints?step=${encodeURIComponent(step.name)}`);
    renderEndpoint(panel, step);
  };
  for (const s of apis) {
    list.append(h("li", { dataset: { name: s.name } },
      h("button", { class: "endpoint-item", onclick: () => show(s) },
        h("span", { class: `method method-${s.method}` }, s.method),
        h("span", { class: "mono" }, s.path), h("span", { class: "muted small" }, s.name))));
  }
  clear(root, h("div", { class: "split" },
    h("aside", { class: "sidebar" }, h("h2", {}, `Endpoints (${apis.length})`), list), panel));
  if (picked) show(picked);
  else panel.append(h("p", { class: "muted" }, "No API steps are loaded."));
  return null;
}

function renderEndpoint(panel, step) {
  const schema = step.body && step.body.schema;
  const hasBody = !["GET", "DELETE"].includes(step.method);
  const path = h("input", { name: "path", class: "mono", value: step.path, spellcheck: "false" });
  const queryInput = h("input", { name: "query", class: "mono", placeholder: "a=1&b=2" });
  const headers = h("textarea", { name: "headers", class: "mono", rows: 3, spellcheck: "false",
    placeholder: "X-Custom: value (one header per line)" });
  const body = h("textarea", { name: "body", class: "mono", rows: 10, spellcheck: "false" });
  body.value = schema ? pretty(example(schema, schema)) : "{}";
  const result = h("div", { class: "response", "aria-live": "polite" });
  const send = async (ev) => {
    ev.preventDefault();
    await sendRequest(step, path.value, queryInput.value, headers.value,
      hasBody ? body.value : null, result);
  };
  clear(panel,
    h("div", { class: "view-head" },
      h("h1", {}, h("span", { class: `method method-${step.method}` }, step.method), " ",
        h("span", { class: "mono" }, step.path)),
      badge((step.flows || []).join(", ") || "default", "flow")),
    h("p", {}, h("strong", {}, step.name), step.description ? ` — ${step.description}` : ""),
    schema ? h("details", {}, h("summary", {}, `Body schema: ${step.body.model}`),
      h("pre", { class: "code" }, pretty(schema))) : null,
    step.response ? h("details", {}, h("summary", {}, `Response schema: ${step.response.model}`),
      h("pre", { class: "code" }, pretty(step.response.schema))) : null,
    h("form", { class: "request-form", onsubmit: send },
      h("div", { class: "row" }, h("label", { class: "field grow" }, h("span", {}, "Path"), path),
        h("label", { class: "field grow" }, h("span", {}, "Query"), queryInput)),
      h("label", { class: "field" }, h("span", {}, "Headers"), headers),
      hasBody ? h("label", { class: "field" }, h("span", {}, "Body (JSON)"), body) : null,
      h("div", { class: "actions" }, h("button", { type: "submit" }, `Send ${step.method}`))),
    result);
}

function parseHeaders(text) {
  const out = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf(":");
    if (at > 0) out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

async function sendRequest(step, path, queryText, headerText, bodyText, result) {
  const headers = { ...parseHeaders(headerText) };
  const init = { method: step.method, headers, credentials: "same-origin" };
  if (bodyText !== null && bodyText.trim()) {
    try {
      JSON.parse(bodyText);
    } catch (err) {
      clear(result, h("p", { class: "error", role: "alert" }, `The body is not valid JSON: ${err.message}`));
      return;
    }
    if (!Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) {
      headers["content-type"] = "application/json";
    }
    init.body = bodyText;
  }
  if (path.includes("{")) {
    clear(result, h("p", { class: "error", role: "alert" },
      "Fill in the path parameters (the parts in braces) first."));
    return;
  }
  const url = path + (queryText.trim() ? `?${queryText.trim().replace(/^\?/, "")}` : "");
  clear(result, h("p", { class: "muted" }, "Sending…"));
  const started = performance.now();
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    clear(result, h("p", { class: "error", role: "alert" }, `Request failed: ${err.message}`));
    return;
  }
  const took = performance.now() - started;
  const text = await response.text();
  let shown = text;
  try { shown = pretty(JSON.parse(text)); } catch { /* not JSON: show as is */ }
  const traceId = response.headers.get("x-trace-id");
  const kind = response.status < 300 ? "ok" : response.status < 500 ? "warn" : "failed";
  clear(result,
    h("div", { class: "response-head" },
      h("span", { class: `status status-${kind}`, "data-testid": "response-status" },
        `${response.status} ${response.statusText}`),
      h("span", { class: "muted" }, fmtMs(took)),
      traceId ? h("span", {}, "Trace: ", traceLink(traceId, traceId)) : null),
    h("details", {}, h("summary", {}, "Response headers"),
      h("table", { class: "table compact" }, h("tbody", {},
        [...response.headers.entries()].map(([k, v]) => h("tr", {}, h("th", {}, k),
          h("td", { class: "mono" }, v)))))),
    h("pre", { class: "code", "data-testid": "response-body" }, shown || "(empty body)"));
}

// A starting body built from the JSON schema: defaults and examples when given, else zeros.
function example(schema, root, depth = 0) {
  if (!schema || depth > 6) return null;
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return example((root.$defs || root.definitions || {})[name], root, depth + 1);
  }
  if ("default" in schema) return schema.default;
  if (schema.examples && schema.examples.length) return schema.examples[0];
  if (schema.enum) return schema.enum[0];
  const choice = schema.anyOf || schema.oneOf || schema.allOf;
  if (choice) return example(choice.find((s) => s.type !== "null") || choice[0], root, depth + 1);
  switch (Array.isArray(schema.type) ? schema.type[0] : schema.type) {
    case "object": {
      const out = {};
      for (const [k, v] of Object.entries(schema.properties || {})) {
        out[k] = example(v, root, depth + 1);
      }
      return out;
    }
    case "array": return [];
    case "string": return schema.format === "email" ? "user@example.com" : "";
    case "integer": case "number":
      return schema.minimum ?? (schema.exclusiveMinimum ?? -1) + 1;
    case "boolean": return false;
    default: return schema.properties ? example({ ...schema, type: "object" }, root, depth) : null;
  }
}
