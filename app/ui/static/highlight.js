// Guard annotations in text: placeholders such as <EMAIL_ADDRESS> or <PERSON_1> (placeholder and pseudonymize
// actions) and runs of asterisks (the mask action), each marked by its entity type. Text is only ever set with
// textContent: nothing the model writes becomes markup.

const PLACEHOLDER = /<([A-Z][A-Z0-9]*(?:_[A-Z][A-Z0-9]*)*)(?:_(\d+))?>|\*{3,}/g;
const KNOWN = new Set([
  "EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER", "CREDIT_CARD", "LOCATION", "URL", "US_SSN", "IBAN_CODE",
  "IP_ADDRESS", "CRYPTO",
]);

/** Entity types a stage's decisions name, e.g. ["EMAIL_ADDRESS"] from {"guard":"pii","findings":{...}}. */
export function entityTypes(decisions) {
  const types = new Set();
  for (const d of decisions || []) {
    if (d.guard === "pii" && d.findings) for (const t of Object.keys(d.findings)) types.add(t);
  }
  return [...types];
}

function mark(shown, type, how) {
  const el = document.createElement("mark");
  el.className = `entity entity-${KNOWN.has(type) ? type : "OTHER"}`;
  el.dataset.entity = type;
  el.title = `${how}: ${type}`;
  el.append(document.createTextNode(shown));
  const tag = document.createElement("span");
  tag.className = "entity-tag";
  tag.textContent = type;
  el.append(tag);
  return el;
}

/**
 * Fill `container` with `text`, marking placeholders and masks. `maskTypes`: the entity types the output guard
 * masked (a run of asterisks carries no type: it is named by them when there is exactly one, else "MASKED").
 * Returns the number of marks.
 */
export function renderAnnotated(container, text, maskTypes = []) {
  container.replaceChildren();
  let last = 0;
  let marks = 0;
  const masked = maskTypes.length === 1 ? maskTypes[0] : "MASKED";
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (m.index > last) container.append(document.createTextNode(text.slice(last, m.index)));
    if (m[0].startsWith("*")) container.append(mark(m[0], masked, "masked"));
    else container.append(mark(m[0], m[1], m[2] ? "pseudonymized" : "placeholder"));
    marks += 1;
    last = m.index + m[0].length;
  }
  if (last < text.length) container.append(document.createTextNode(text.slice(last)));
  return marks;
}

/** The spans the input guards report for message `index` of the request: [start, end, type] in code points. */
export function inputSpans(decisions, index) {
  const spans = [];
  for (const d of decisions || []) {
    for (const s of d.spans || []) if (s[0] === index) spans.push({ start: s[1], end: s[2], type: s[3], how: d.action });
  }
  return spans.sort((a, b) => a.start - b.start);
}

/**
 * Fill `container` with the prompt `text` as the user typed it, marking what the input guards replaced (offsets in
 * code points, as the gateway counts them; overlapping spans are merged into the first). Returns the number of marks.
 */
export function renderSpans(container, text, spans) {
  const chars = Array.from(text);
  container.replaceChildren();
  let last = 0;
  let marks = 0;
  for (const s of spans) {
    if (s.start < last || s.end > chars.length || s.end <= s.start) continue;
    if (s.start > last) container.append(document.createTextNode(chars.slice(last, s.start).join("")));
    container.append(mark(chars.slice(s.start, s.end).join(""), s.type, s.how === "pseudonymize" ? "pseudonymized" : s.how));
    marks += 1;
    last = s.end;
  }
  if (last < chars.length) container.append(document.createTextNode(chars.slice(last).join("")));
  return marks;
}
