// The API as the page calls it: the key kept in this browser, JSON calls, files fetched with the key,
// and a job's server-sent events read through fetch (EventSource cannot send an Authorization header).

const KEY = "talkfarm.apiKey";

export const apiKey = {
  known: () => localStorage.getItem(KEY) !== null,
  get: () => localStorage.getItem(KEY) || "",
  set: (value) => localStorage.setItem(KEY, value.trim()),
  forget: () => localStorage.removeItem(KEY),
};

export function authHeaders() {
  const key = apiKey.get();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** An answer of the API that is not a success: its status, machine-readable code and message. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function failure(res) {
  let body = {};
  try { body = await res.json(); } catch { /* not JSON: keep the status */ }
  return new ApiError(res.status, body.code || `http_${res.status}`, body.message || res.statusText,
                      res.headers.get("Retry-After"));
}

async function send(method, url, body, signal) {
  const headers = authHeaders();
  if (body !== undefined && !(body instanceof FormData)) {  // an object: sent as JSON
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, { method, body, headers, signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "offline", "the farm could not be reached");
  }
  if (!res.ok) throw await failure(res);
  return res;
}

/** A call with a FormData or JSON body (an object): the answer's JSON, or an ApiError. */
export async function call(method, url, body = undefined, signal = undefined) {
  return (await send(method, url, body, signal)).json();
}

/** A file of the API (a portrait, a video) as an object URL the page can show. */
export async function objectUrl(url) {
  return URL.createObjectURL(await (await send("GET", url)).blob());
}

/** The job's events, ``{kind, data}`` each, until its ``done`` frame; reconnects after ``Last-Event-ID``. */
export async function* jobEvents(url, signal) {
  let lastId = "";
  for (let attempt = 0; attempt < 20; attempt++) {
    const headers = { ...authHeaders(), Accept: "text/event-stream" };
    if (lastId) headers["Last-Event-ID"] = lastId;
    let res;
    try {
      res = await fetch(url, { headers, signal, cache: "no-store" });
    } catch (e) {
      if (e.name === "AbortError") return;
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (!res.ok) throw await failure(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      let chunk;
      try { chunk = await reader.read(); } catch (e) { if (e.name === "AbortError") return; break; }
      if (chunk.done) break;
      buffer += chunk.value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message";
        const data = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          else if (line.startsWith("id:")) lastId = line.slice(3).trim();
        }
        if (!data.length) continue;  // a keep-alive comment
        const parsed = JSON.parse(data.join("\n"));
        yield { kind, data: parsed };
        if (kind === "done") return;
      }
    }
  }
}
