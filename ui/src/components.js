// Small pieces every page uses: data that re-reads on changes, times, badges, tables,
// confirmations, errors.
import { h } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { useChanges } from './live.js';

export const html = htm.bind(h);

// Loads `load()` now and again when a change of one of `kinds` arrives — at once for the first,
// then at most every `quietMs` while changes keep coming (a storm of changes costs a read per
// window, not one per change) — keeping the last good data while it re-reads.
export function useData(load, kinds = [], deps = [], quietMs = 100) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const timer = useRef(null);
  const seq = useRef(0);
  const run = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const data = await load();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    setState({ data: null, error: null, loading: true });
    run();
    return () => clearTimeout(timer.current);
  }, [run]);
  const pending = useRef(false);
  const onChange = useCallback(() => {
    if (timer.current) {
      pending.current = true;  // read again when the quiet time ends
      return;
    }
    run();
    const quiet = () => {
      timer.current = setTimeout(() => {
        timer.current = null;
        if (pending.current) {
          pending.current = false;
          run();
          quiet();
        }
      }, quietMs);
    };
    quiet();
  }, [run, quietMs]);
  useChanges(kinds, onChange);
  return { ...state, reload: run };
}

const pad = (n) => String(n).padStart(2, '0');

// A time in the browser's zone; UTC on hover.
export function Time({ at }) {
  if (!at || at.startsWith('1970-')) return html`<span class="muted">—</span>`;
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return at;
  const local = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return html`<time datetime=${at} title=${`${d.toISOString()} (UTC)`}>${local}</time>`;
}

export function Ago({ at }) {
  if (!at) return html`<span class="muted">—</span>`;
  const s = Math.max(0, (Date.now() - new Date(at).getTime()) / 1000);
  const text = s < 60 ? `${Math.round(s)}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : s < 86400 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86400)}d ago`;
  return html`<time datetime=${at} title=${new Date(at).toISOString() + ' (UTC)'}>${text}</time>`;
}

export const tone = {
  ready: 'ok', running: 'ok', succeeded: 'ok', completed: 'ok', inactive: 'ok', resolved: 'ok', live: 'ok',
  pending: 'warn', starting: 'warn', scaling: 'warn', degraded: 'bad', unhealthy: 'bad', failed: 'bad',
  firing: 'bad', broken: 'bad', ejected: 'bad', stopped: 'muted', terminated: 'muted', cancelled: 'muted', closed: 'muted',
};
export function Badge({ value }) {
  return html`<span class=${`badge ${tone[value] || 'plain'}`}>${value}</span>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  const fields = error.problem && error.problem.errors;
  return html`<div class="error" role="alert">
    <strong>${error.status ? `${error.status}: ` : ''}${error.message}</strong>
    ${fields && html`<ul>${fields.map((f) => html`<li><code>${f.field}</code> ${f.reason || f.message}</li>`)}</ul>`}
  </div>`;
}

// A table; `rows` are arrays of cells; an empty list says so.
export function Table({ head, rows, empty = 'Nothing here yet.', label }) {
  if (!rows) return html`<p class="muted">Loading…</p>`;
  if (!rows.length) return html`<p class="muted">${empty}</p>`;
  return html`<div class="table-wrap"><table aria-label=${label}>
    <thead><tr>${head.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

// A button that asks first (a native dialog: focus trapped, Escape cancels).
export function ConfirmButton({ label, question, onConfirm, danger = false }) {
  const dialog = useRef(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      dialog.current.close();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<button class=${danger ? 'danger' : ''} onClick=${() => dialog.current.showModal()}>${label}</button>
    <dialog ref=${dialog} aria-label=${label}>
      <p>${question}</p>
      <${ErrorBox} error=${error} />
      <div class="actions">
        <button onClick=${() => dialog.current.close()}>Cancel</button>
        <button class=${danger ? 'danger' : 'primary'} disabled=${busy} onClick=${go}>${label}</button>
      </div>
    </dialog>`;
}

export function Page({ title, actions, children }) {
  useEffect(() => {
    document.title = `${title} · drover`;
  }, [title]);
  return html`<section class="page">
    <header class="page-head"><h1>${title}</h1><div class="actions">${actions}</div></header>
    ${children}
  </section>`;
}

export function Card({ title, href, children }) {
  return html`<section class="card" aria-label=${title}>
    <h2>${href ? html`<a href=${href}>${title}</a>` : title}</h2>
    ${children}
  </section>`;
}

export const enc = encodeURIComponent;
