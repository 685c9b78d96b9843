// For admin keys: the /admin/keys API (create, list, revoke, rotate), and a usage view: each key's and tenant's use
// of its limits from GET /admin/usage, then the gateway's counters from GET /metrics.

import { call, text } from "./api.js";

const $ = (id) => document.getElementById(id);

function fail(id, err) {
  const box = $(id);
  box.textContent = err ? `${err.message}${err.code ? ` (${err.code})` : ""}` : "";
  box.hidden = !err;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16) : "—";
}

function showKey(record, verb) {
  const box = $("new-key");
  box.replaceChildren();
  const p = document.createElement("p");
  p.textContent = `Key ${verb} for tenant ${record.tenant} (shown once, copy it now):`;
  const code = document.createElement("code");
  code.className = "secret-value";
  code.textContent = record.key;
  box.append(p, code);
  box.hidden = false;
}

function button(label, onClick, name) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "secondary small";
  b.textContent = label;
  b.setAttribute("aria-label", `${label} key ${name}`);
  b.addEventListener("click", onClick);
  return b;
}

export async function loadKeys() {
  fail("keys-error", null);
  const tenant = $("keys-tenant").value.trim();
  try {
    const { body } = await call("GET", `/admin/keys${tenant ? `?tenant=${encodeURIComponent(tenant)}` : ""}`);
    const rows = $("keys-table").tBodies[0];
    rows.replaceChildren();
    for (const k of body.data) {
      const row = rows.insertRow();
      const state = k.state;
      for (const v of [k.id, k.tenant, k.role, k.policy || "gateway default", k.name || "", when(k.created_at), state]) {
        row.insertCell().textContent = v;
      }
      const actions = row.insertCell();
      if (state === "active") {
        actions.append(
          button("Rotate", async () => {
            try {
              showKey((await call("POST", `/admin/keys/${k.id}/rotate`, { grace_seconds: 0 })).body, "rotated");
              await loadKeys();
            } catch (err) {
              fail("keys-error", err);
            }
          }, k.id),
          button("Revoke", async () => {
            try {
              await call("DELETE", `/admin/keys/${k.id}`);
              await loadKeys();
            } catch (err) {
              fail("keys-error", err);
            }
          }, k.id),
        );
      }
    }
  } catch (err) {
    fail("keys-error", err);
  }
}

const USAGE = {
  guardserve_requests_total: "Requests",
  guardserve_prompt_tokens_total: "Prompt tokens",
  guardserve_completion_tokens_total: "Completion tokens",
  guardserve_guard_actions_total: "Guard actions",
  guardserve_feedback_total: "Feedback",
};

function parseMetrics(body) {
  const rows = [];
  for (const line of body.split("\n")) {
    const m = line.match(/^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$/);
    if (m && USAGE[m[1]] && Number(m[3]) > 0) rows.push([USAGE[m[1]], (m[2] || "").slice(1, -1), Number(m[3])]);
  }
  return rows;
}

function table(captionText, headers, rows, id) {
  const t = document.createElement("table");
  if (id) t.id = id;
  const caption = document.createElement("caption");
  caption.textContent = captionText;
  t.append(caption);
  const head = t.createTHead().insertRow();
  for (const h of headers) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = h;
    head.append(th);
  }
  const body = t.createTBody();
  for (const r of rows) {
    const row = body.insertRow();
    for (const v of r) row.insertCell().textContent = String(v);
  }
  return t;
}

const of = (used, limit) => `${used} / ${limit ?? "no limit"}`;

function limitRows(data) {
  return data.map((r) => [
    r.tenant,
    r.scope === "key" ? `${r.name || r.key_id} (${r.role})` : "whole tenant",
    of(r.usage.requests, r.limits.requests_per_minute),
    of(r.usage.tokens, r.limits.tokens_per_minute),
    of(r.usage.concurrent, r.limits.concurrent),
    of(r.usage.tokens_today, r.limits.tokens_per_day),
  ]);
}

export async function loadUsage() {
  fail("usage-error", null);
  const parts = [];
  try {
    const { body } = await call("GET", "/admin/usage");
    const headers = ["Tenant", "Key", "Requests / min", "Tokens / min", "Concurrent", "Tokens today (UTC)"];
    parts.push(table(`Use of limits now (${body.limiter} limiter)`, headers, limitRows(body.data), "usage-limits"));
  } catch (err) {
    fail("usage-error", err); // e.g. limits disabled: the counters below still show
  }
  try {
    const rows = parseMetrics(await text("/metrics"));
    parts.push(table("Gateway counters since it started (per model; no tenant labels)", ["Metric", "Labels", "Value"], rows));
  } catch (err) {
    fail("usage-error", err);
  }
  $("usage-result").replaceChildren(...parts);
}

export function setPolicies(policies) {
  const select = $("new-policy");
  for (const p of policies) select.append(new Option(p.name, p.name));
}

export function initAdmin() {
  $("keys-refresh").addEventListener("click", loadKeys);
  $("usage-refresh").addEventListener("click", loadUsage);
  $("key-create").addEventListener("submit", async (event) => {
    event.preventDefault();
    fail("keys-error", null);
    const body = { tenant: $("new-tenant").value.trim(), role: $("new-role").value };
    if ($("new-policy").value) body.policy = $("new-policy").value;
    if ($("new-name").value.trim()) body.name = $("new-name").value.trim();
    if ($("new-expires").value) body.expires_in = Number($("new-expires").value);
    try {
      showKey((await call("POST", "/admin/keys", body)).body, "created");
      await loadKeys();
    } catch (err) {
      fail("keys-error", err);
    }
  });
}
