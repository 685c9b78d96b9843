// The moderation tester: POST /v1/moderations, each category's score against the threshold it is flagged at.

import { call } from "./api.js";

const $ = (id) => document.getElementById(id);
let thresholds = {};

export function setThresholds(values) {
  thresholds = values || {};
}

function cell(row, text, tag = "td") {
  const c = document.createElement(tag);
  c.textContent = text;
  if (tag === "th") c.scope = "row";
  row.append(c);
  return c;
}

function render(result) {
  const out = $("moderation-result");
  out.replaceChildren();
  const verdict = document.createElement("p");
  verdict.className = result.flagged ? "verdict verdict-flagged" : "verdict verdict-ok";
  verdict.textContent = result.flagged ? "Flagged" : "Not flagged";
  out.append(verdict);
  const table = document.createElement("table");
  table.className = "moderation";
  const caption = document.createElement("caption");
  caption.textContent = "Scores per category (thresholds: the gateway's default policy)";
  table.append(caption);
  const head = table.createTHead().insertRow();
  for (const h of ["Category", "Score", "Threshold", "Flagged"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = h;
    head.append(th);
  }
  const body = table.createTBody();
  for (const [category, score] of Object.entries(result.category_scores)) {
    const row = body.insertRow();
    row.dataset.category = category;
    cell(row, category, "th");
    const scoreCell = cell(row, "");
    const meter = document.createElement("meter");
    meter.min = 0;
    meter.max = 1;
    meter.value = score;
    if (thresholds[category] !== undefined) meter.high = thresholds[category];
    meter.setAttribute("aria-label", `${category} score`);
    scoreCell.append(meter, document.createTextNode(` ${score.toFixed(3)}`));
    cell(row, thresholds[category] !== undefined ? thresholds[category].toFixed(3) : "—");
    cell(row, result.categories[category] ? "yes" : "no").className = result.categories[category] ? "flag-yes" : "flag-no";
  }
  out.append(table);
}

export function initModeration() {
  $("moderation-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("moderation-error");
    error.hidden = true;
    try {
      const { body } = await call("POST", "/v1/moderations", { input: $("moderation-input").value });
      render(body.results[0]);
    } catch (err) {
      error.textContent = `Moderation failed${err.code ? ` (${err.code})` : ""}: ${err.message}`;
      error.hidden = false;
    }
  });
}
