// The playground's entry point: the API key, the section tabs, the model and policy pickers.

import { call, getKey, setKey } from "./api.js";
import { initAdmin, loadKeys, loadUsage, setPolicies } from "./admin.js";
import { initChat } from "./chat.js";
import { initModeration, setThresholds } from "./moderation.js";

const $ = (id) => document.getElementById(id);

function show(view) {
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  if (view === "keys") loadKeys();
  if (view === "usage") loadUsage();
}

async function loadModels() {
  const select = $("model");
  const previous = select.value;
  try {
    const { body } = await call("GET", "/v1/models");
    select.replaceChildren();
    for (const m of body.data) {
      const option = new Option(`${m.id}${m.engine ? ` (${m.engine}, context ${m.context_length})` : ""}`, m.id);
      select.append(option);
    }
    if (previous && [...select.options].some((o) => o.value === previous)) select.value = previous;
    $("key-status").textContent = `${body.data.length} model${body.data.length === 1 ? "" : "s"} available.`;
    return true;
  } catch (err) {
    select.replaceChildren();
    $("key-status").textContent = `Cannot list models: ${err.message}`;
    return false;
  }
}

async function checkAdmin() {
  let admin = false;
  if (getKey()) {
    try {
      await call("GET", "/admin/keys");
      admin = true;
    } catch {
      admin = false;
    }
  }
  for (const view of ["keys", "usage"]) document.querySelector(`.tab[data-view=${view}]`).hidden = !admin;
}

async function loadGuardrails() {
  // behind the API key like the API itself: loaded again whenever the key changes
  for (const id of ["policy", "new-policy"]) {
    const select = $(id);
    while (select.options.length > 1) select.remove(1);
  }
  try {
    const { body } = await call("GET", "/ui/api/guardrails");
    const select = $("policy");
    for (const p of body.policies) {
      const label = `${p.name}${p.name === body.key_policy ? " (this key's)" : ""}`;
      select.append(new Option(label, p.name));
    }
    if (!body.enabled) $("policy-hint").textContent = "Guardrails are disabled on this gateway.";
    setThresholds(body.moderation_thresholds);
    return body.policies;
  } catch {
    return [];
  }
}

async function useKey() {
  const ok = await loadModels();
  setPolicies(await loadGuardrails());
  await checkAdmin();
  return ok;
}

async function start() {
  $("api-key").value = getKey();
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setKey($("api-key").value.trim());
    await useKey();
  });
  $("forget-key").addEventListener("click", async () => {
    setKey("");
    $("api-key").value = "";
    await useKey();
  });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  initChat();
  initModeration();
  initAdmin();
  await useKey();
  document.body.dataset.ready = "true";
}

start();
