// The gateway's API as the page uses it: the key (sessionStorage only), JSON calls, and OpenAI SSE streams.

const KEY = "guardserve.apiKey";

export function getKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export function headers(extra = {}) {
  const h = { "Content-Type": "application/json", ...extra };
  const key = getKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

/** An error in OpenAI's envelope, with the HTTP status. */
export class APIError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || null;
    this.type = error.type || null;
    this.param = error.param || null;
  }
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = body && body.error ? body.error : { message: `HTTP ${response.status} ${response.statusText}` };
  return new APIError(response.status, error);
}

/** A JSON call: the parsed body, or an APIError. */
export async function call(method, path, body, extra = {}) {
  const init = { method, headers: headers(extra) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await errorOf(response);
  const text = await response.text();
  return { body: text ? JSON.parse(text) : null, headers: response.headers, status: response.status };
}

export async function text(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await errorOf(response);
  return response.text();
}

/**
 * POST a streaming chat completion; call onChunk(chunk) per SSE event, in order, until `data: [DONE]`.
 * Resolves with the response headers; rejects with an APIError (before or during the stream) or an AbortError.
 */
export async function stream(path, body, signal, onChunk, onHeaders) {
  const response = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body), signal });
  if (!response.ok) throw await errorOf(response);
  if (onHeaders) onHeaders(response.headers);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      if (handleEvent(event, onChunk)) return response.headers;
    }
  }
  if (buffer.trim() && handleEvent(buffer, onChunk)) return response.headers;
  return response.headers;
}

/** One SSE event (its data lines joined); true at [DONE]. */
function handleEvent(event, onChunk) {
  const data = event
    .split(/\r?\n/)
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).replace(/^ /, ""))
    .join("\n");
  if (!data) return false;
  if (data === "[DONE]") return true;
  const chunk = JSON.parse(data);
  if (chunk.error) throw new APIError(0, chunk.error);
  onChunk(chunk);
  return false;
}
