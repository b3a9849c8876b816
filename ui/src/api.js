// The public API, as the CLI calls it: a bearer key (kept in sessionStorage, never in a URL) or
// the dashboard session's cookie (`drover ui`; HttpOnly, taken by the server only with the
// X-Drover-UI header, which a page of another site cannot send). JSON in and out, problems
// (RFC 9457) as ApiError.
const KEY = 'drover.key';

export const session = {
  key: () => sessionStorage.getItem(KEY),
  set: (k) => sessionStorage.setItem(KEY, k),
  clear: () => sessionStorage.removeItem(KEY),
};

function authHeaders() {
  const key = session.key();
  return key ? { 'X-Drover-UI': '1', Authorization: `Bearer ${key}` } : { 'X-Drover-UI': '1' };
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function api(method, path, body, extraHeaders = {}) {
  const headers = { ...authHeaders(), ...extraHeaders };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (r.status === 401) onUnauthorized();
  if (!r.ok) {
    let problem = {};
    try {
      problem = await r.json();
    } catch {
      problem = { title: r.statusText };
    }
    throw new ApiError(r.status, problem);
  }
  if (r.status === 204) return null;
  const type = r.headers.get('content-type') || '';
  return type.includes('json') ? r.json() : r.text();
}

export const get = (path) => api('GET', path);

// Forgets the key and ends the dashboard session (its cookie cleared by the server).
export async function signOut() {
  session.clear();
  try {
    await api('DELETE', '/v1/ui/session');
  } catch {
    // Signed out here either way; a server out of reach ends the session at its expiry.
  }
}

// Every item of a paged list (items + next_cursor), up to `max`.
export async function getAll(path, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...(page.items || []));
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

// Reads a server-sent event stream with the key in a header (EventSource cannot send one):
// calls onEvent({id, event, data}) for each event until `signal` aborts or the stream ends.
export async function readEventStream(path, { lastEventId, onEvent, onOpen, signal }) {
  const headers = { ...authHeaders(), Accept: 'text/event-stream' };
  if (lastEventId) headers['Last-Event-ID'] = lastEventId;
  const r = await fetch(path, { headers, signal, cache: 'no-store' });
  if (r.status === 401) onUnauthorized();
  if (!r.ok || !r.body) throw new ApiError(r.status, { title: r.statusText });
  if (onOpen) onOpen();
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let ev = { id: '', event: '', data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (ev.data.length) onEvent({ id: ev.id, event: ev.event, data: ev.data.join('\n') });
        ev = { id: ev.id, event: '', data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') ev.data.push(val);
      else if (field === 'id') ev.id = val;
      else if (field === 'event') ev.event = val;
    }
  }
}
