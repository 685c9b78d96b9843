// Per-answer feedback: thumbs up/down, categories, a comment and an optional better answer -> POST /v1/feedback.

import { APIError, call } from "./api.js";

const CATEGORIES = [
  ["harmful", "Harmful"],
  ["inaccurate", "Inaccurate"],
  ["pii_leak", "Personal data leak"],
  ["unhelpful", "Unhelpful"],
  ["offensive", "Offensive"],
  ["other", "Other"],
];
let counter = 0;

function el(tag, props = {}, text) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function submit(body, status) {
  // The response's record is written just after the answer ends: a very quick rating may arrive first (404).
  for (let attempt = 0; ; attempt += 1) {
    try {
      return (await call("POST", "/v1/feedback", body)).body;
    } catch (err) {
      if (!(err instanceof APIError) || err.status !== 404 || attempt >= 10) throw err;
      status.textContent = "Waiting for the response's record…";
      await new Promise((resolve) => setTimeout(resolve, 300 * (attempt + 1)));
    }
  }
}

/** The feedback controls for the answer with this response id. */
export function feedbackControls(responseId) {
  const n = (counter += 1);
  const box = el("div", { className: "feedback" });
  const group = el("div", { className: "thumbs" });
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Rate this answer");
  const up = el("button", { type: "button", className: "thumb" }, "▲ Good");
  const down = el("button", { type: "button", className: "thumb" }, "▼ Bad");
  up.setAttribute("aria-label", "Good answer");
  down.setAttribute("aria-label", "Bad answer");
  for (const b of [up, down]) b.setAttribute("aria-pressed", "false");
  group.append(up, down);
  box.append(group);

  const form = el("form", { className: "feedback-form", hidden: true });
  const fieldset = el("fieldset");
  fieldset.append(el("legend", {}, "What was wrong or right? (optional)"));
  for (const [value, label] of CATEGORIES) {
    const id = `fb${n}-${value}`;
    const wrap = el("span", { className: "check" });
    wrap.append(el("input", { type: "checkbox", id, name: "category", value }), el("label", { htmlFor: id }, label));
    fieldset.append(wrap);
  }
  form.append(fieldset);
  form.append(el("label", { htmlFor: `fb${n}-comment` }, "Comment"));
  form.append(el("textarea", { id: `fb${n}-comment`, name: "comment", rows: 2, maxLength: 2000 }));
  form.append(el("label", { htmlFor: `fb${n}-preferred` }, "A better answer (optional)"));
  form.append(el("textarea", { id: `fb${n}-preferred`, name: "preferred", rows: 2 }));
  const send = el("button", { type: "submit" }, "Send feedback");
  form.append(el("div", { className: "actions" }));
  form.lastChild.append(send);
  box.append(form);
  const status = el("p", { className: "feedback-status" });
  status.setAttribute("role", "status");
  box.append(status);

  let rating = null;
  const choose = (value) => {
    rating = value;
    up.setAttribute("aria-pressed", String(value === "up"));
    down.setAttribute("aria-pressed", String(value === "down"));
    form.hidden = false;
    form.querySelector("input").focus();
  };
  up.addEventListener("click", () => choose("up"));
  down.addEventListener("click", () => choose("down"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const categories = [...form.querySelectorAll("input[name=category]:checked")].map((c) => c.value);
    const body = { response_id: responseId, rating, categories };
    const comment = form.elements.comment.value.trim();
    const preferred = form.elements.preferred.value.trim();
    if (comment) body.comment = comment;
    if (preferred) body.preferred = preferred;
    send.disabled = true;
    status.textContent = "Sending…";
    try {
      const stored = await submit(body, status);
      status.textContent = `Thank you: feedback ${stored.id} stored${stored.record_kept ? "" : " (the answer's record was not kept)"}.`;
      box.dataset.feedbackId = stored.id;
      form.hidden = true;
    } catch (err) {
      status.textContent = `Feedback failed: ${err.message}`;
      send.disabled = false;
    }
  });
  return box;
}
