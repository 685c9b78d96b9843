// The chat: a streamed completion per turn, its guard annotations, a decisions-and-timings panel, and feedback.

import { APIError, stream } from "./api.js";
import { entityTypes, inputSpans, renderAnnotated, renderSpans } from "./highlight.js";
import { feedbackControls } from "./feedback.js";

const $ = (id) => document.getElementById(id);
const BLOCK_REASONS = {
  content_filter: "The guardrails blocked this prompt before the model saw it.",
  pii_detected: "The guardrails blocked this prompt because it contains personal data and the policy blocks it.",
  policy_not_allowed: "The key may not use this policy: a request may only ask for a policy at least as strict as its key's.",
};

let history = []; // the conversation as sent: [{role, content}]
let controller = null;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function addMessage(role, label) {
  const item = el("li", `msg msg-${role}`);
  item.append(el("div", "msg-role", label));
  const body = el("div", "msg-text");
  item.append(body);
  $("messages").append(item);
  return { item, body };
}

function describe(decision) {
  const findings = decision.findings ? Object.entries(decision.findings).map(([t, n]) => `${t}×${n}`).join(", ") : "";
  return findings;
}

function chips(decisions, stage) {
  const list = el("ul", "chips");
  list.setAttribute("aria-label", `${stage} guard decisions`);
  for (const d of decisions || []) {
    const chip = el("li", `chip chip-${d.action}`, `${d.guard}: ${d.action}${describe(d) ? ` (${describe(d)})` : ""}`);
    list.append(chip);
  }
  return list;
}

function guardPanel(state) {
  const details = el("details", "guard-panel");
  details.append(el("summary", null, "Guard decisions and timings"));
  const table = el("table", "decisions");
  const caption = el("caption", null, `Policy: ${state.guardrails?.policy || state.headers?.get("x-guardrails-policy") || "none"}`);
  table.append(caption);
  const head = el("thead");
  const hr = el("tr");
  for (const h of ["Stage", "Guard", "Action", "Findings", "Score", "Latency (ms)"]) {
    const th = el("th", null, h);
    th.scope = "col";
    hr.append(th);
  }
  head.append(hr);
  table.append(head);
  const body = el("tbody");
  for (const stage of ["input", "output"]) {
    for (const d of state.guardrails?.[stage] || []) {
      const row = el("tr");
      for (const v of [stage, d.guard, d.action, describe(d) || "—", d.score ?? "—", d.latency_ms ?? "—"]) row.append(el("td", null, String(v)));
      body.append(row);
    }
  }
  if (!body.children.length) {
    const row = el("tr");
    const cell = el("td", null, "No guard acted on this request.");
    cell.colSpan = 6;
    row.append(cell);
    body.append(row);
  }
  table.append(body);
  details.append(table);
  const facts = el("dl", "timings");
  const add = (k, v) => {
    facts.append(el("dt", null, k));
    facts.append(el("dd", null, v));
  };
  add("Time to first token", state.ttft === null ? "—" : `${state.ttft.toFixed(0)} ms`);
  add("Total", `${state.total.toFixed(0)} ms`);
  add("Completion tokens", `${state.tokens}${state.usage ? "" : " (counted deltas)"}`);
  add("Tokens/s", state.tps === null ? "—" : state.tps.toFixed(1));
  for (const h of ["x-guardrails-input", "x-guardrails-output"]) {
    const v = state.headers?.get(h);
    if (v) add(h, v);
  }
  details.append(facts);
  return details;
}

function showError(message) {
  const box = $("chat-error");
  box.textContent = message;
  box.hidden = !message;
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

function requestBody(settings) {
  const messages = [];
  if (settings.system) messages.push({ role: "system", content: settings.system });
  messages.push(...history);
  const body = { model: settings.model, messages, stream: true, stream_options: { include_usage: true } };
  if (settings.temperature !== "") body.temperature = Number(settings.temperature);
  if (settings.maxTokens !== "") body.max_tokens = Number(settings.maxTokens);
  if (settings.ignoreEos) body.ignore_eos = true;
  if (settings.policy) body.guardrails = { policy: settings.policy };
  return body;
}

function readSettings() {
  return {
    model: $("model").value,
    policy: $("policy").value,
    system: $("system").value.trim(),
    temperature: $("temperature").value,
    maxTokens: $("max-tokens").value,
    ignoreEos: $("ignore-eos").checked,
  };
}

async function send(text) {
  showError("");
  const user = addMessage("user", "You");
  user.body.textContent = text;
  history.push({ role: "user", content: text });
  const sentIndex = (readSettings().system ? 1 : 0) + history.length - 1; // this message's index in the request
  const answer = addMessage("assistant", "Assistant");
  answer.item.setAttribute("aria-busy", "true");
  const state = { id: null, text: "", guardrails: null, headers: null, finish: null, usage: null, ttft: null, tokens: 0, total: 0, tps: null };
  const started = performance.now();
  let firstAt = null;
  let deltas = 0;
  controller = new AbortController();
  setBusy(true);
  $("chat-status").textContent = "Generating…";
  const onChunk = (chunk) => {
    if (chunk.id) state.id = chunk.id;
    if (chunk.guardrails) state.guardrails = chunk.guardrails;
    if (chunk.usage) state.usage = chunk.usage;
    for (const choice of chunk.choices || []) {
      const piece = choice.delta?.content;
      if (piece) {
        if (firstAt === null) firstAt = performance.now();
        deltas += 1;
        answer.item.dataset.deltas = String(deltas);
        state.text += piece;
        const list = $("messages");
        const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 24; // following the answer
        renderAnnotated(answer.body, state.text, entityTypes(state.guardrails?.output));
        if (atEnd) list.scrollTop = list.scrollHeight;
      }
      if (choice.finish_reason) state.finish = choice.finish_reason;
    }
  };
  let outcome = "done";
  try {
    await stream("/v1/chat/completions", requestBody(readSettings()), controller.signal, onChunk, (h) => {
      state.headers = h;
    });
  } catch (err) {
    if (err.name === "AbortError") outcome = "stopped";
    else {
      outcome = "error";
      state.error = err;
    }
  }
  const ended = performance.now();
  controller = null;
  setBusy(false);
  answer.item.removeAttribute("aria-busy");
  state.total = ended - started;
  state.ttft = firstAt === null ? null : firstAt - started;
  state.tokens = state.usage ? state.usage.completion_tokens : deltas;
  state.tps = firstAt !== null && ended > firstAt && state.tokens > 1 ? (state.tokens - 1) / ((ended - firstAt) / 1000) : null;
  renderAnnotated(answer.body, state.text, entityTypes(state.guardrails?.output));
  if (state.guardrails) {
    renderSpans(user.body, text, inputSpans(state.guardrails.input, sentIndex)); // what the model did not see
    user.item.append(chips(state.guardrails.input, "Input"));
  }

  if (outcome === "error" && state.text) {
    // the stream had started: keep what arrived, say how it ended
    history.push({ role: "assistant", content: state.text });
    const notice = el("div", "notice notice-error");
    notice.setAttribute("role", "alert");
    notice.append(el("strong", null, `The stream ended with an error${state.error.code ? ` (${state.error.code})` : ""}`));
    notice.append(el("p", "reason", state.error.message));
    answer.item.append(notice, guardPanel(state));
    $("chat-status").textContent = "The stream failed.";
    return;
  }
  if (outcome === "error") {
    history.pop();
    answer.item.remove();
    const err = state.error;
    const blocked = err instanceof APIError && BLOCK_REASONS[err.code];
    const notice = el("div", blocked ? "notice notice-blocked" : "notice notice-error");
    notice.setAttribute("role", "alert");
    const title = err.code === "policy_not_allowed" ? "Refused" : blocked ? "Blocked" : "Error";
    notice.append(el("strong", null, `${title}${err.code ? ` (${err.code})` : ""}`));
    if (blocked) notice.append(el("p", null, BLOCK_REASONS[err.code]));
    notice.append(el("p", "reason", err.message));
    user.item.append(notice);
    $("chat-status").textContent = title === "Blocked" ? "Blocked by the guardrails." : "The request failed.";
    return;
  }
  history.push({ role: "assistant", content: state.text });
  if (!state.text) answer.body.textContent = outcome === "stopped" ? "(stopped before any text)" : "(no text)";
  if (outcome === "stopped") {
    answer.item.append(el("p", "notice notice-stopped", "Stopped: the request was aborted and the gateway cancelled the generation."));
    $("chat-status").textContent = "Stopped.";
  } else if (state.finish === "content_filter") {
    const notice = el("div", "notice notice-blocked");
    notice.append(el("strong", null, "Answer stopped by the output guards (finish_reason: content_filter)"));
    const blockers = (state.guardrails?.output || []).filter((d) => d.action === "block").map((d) => d.guard);
    notice.append(el("p", null, `The guardrails ended the answer here${blockers.length ? ` (${blockers.join(", ")})` : ""}; the text before it had passed screening.`));
    answer.item.append(notice);
    $("chat-status").textContent = "Answer ended by the guardrails.";
  } else {
    $("chat-status").textContent = `Done (${state.finish || "no finish reason"}).`;
  }
  const masked = answer.body.querySelectorAll("mark.entity").length;
  if (masked) answer.item.append(el("p", "hint", `${masked} masked or replaced ${masked === 1 ? "entity" : "entities"} highlighted.`));
  if (state.guardrails?.output?.length) answer.item.append(chips(state.guardrails.output, "Output"));
  answer.item.append(guardPanel(state));
  if (state.id) answer.item.append(feedbackControls(state.id));
}

export function initChat() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("prompt").value.trim();
    if (!text || controller) return;
    if (!$("model").value) {
      showError("Choose a model first (is the API key right?).");
      return;
    }
    $("prompt").value = "";
    send(text);
  });
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => {
    if (controller) controller.abort();
    $("prompt").focus();
  });
  $("clear-chat").addEventListener("click", () => {
    if (controller) controller.abort();
    history = [];
    $("messages").replaceChildren();
    showError("");
    $("chat-status").textContent = "New conversation.";
  });
}
