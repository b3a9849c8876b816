// Workflows (definitions and versions) and executions: status, a step timeline that updates
// live from the execution's event stream, inputs, outputs, errors; cancel, retry, signal.
import { useEffect, useState } from 'preact/hooks';
import { api, get, getAll, readEventStream } from '../api.js';
import { html, useData, Ago, Badge, ConfirmButton, ErrorBox, Page, Table, Time, enc } from '../components.js';
import { Dag } from '../dag.js';

export function Workflows() {
  const wfs = useData(() => getAll('/v1/workflows'), ['workflow']);
  return html`<${Page} title="Workflows">
    <${ErrorBox} error=${wfs.error} />
    <${Table} label="Workflows" head=${['Workflow', 'Version', 'Steps', 'Updated', '']}
      rows=${wfs.data && wfs.data.map((w) => [w.name, w.version, ((w.spec && w.spec.steps) || []).length,
        html`<${Ago} at=${w.updated_at} />`, html`<a href=${`/ui/executions?workflow=${enc(w.name)}`}>executions</a>`])}
      empty="No workflows yet." />
  </${Page}>`;
}

export function Executions({ query }) {
  const workflow = query.get('workflow') || '';
  const status = query.get('status') || '';
  const list = useData(async () => {
    const q = new URLSearchParams({ limit: '200' });
    if (workflow) q.set('workflow', workflow);
    if (status) q.set('status', status);
    return (await get(`/v1/executions?${q}`)).items;
  }, ['execution', 'workflow'], [workflow, status]);
  return html`<${Page} title="Executions">
    ${(workflow || status) && html`<p>${workflow && html`workflow <code>${workflow}</code> `}${status && html`<${Badge} value=${status} />`} · <a href="/ui/executions">all</a></p>`}
    <${ErrorBox} error=${list.error} />
    <${Table} label="Executions" head=${['Execution', 'Workflow', 'Status', 'Created']}
      rows=${list.data && list.data.map((e) => [html`<a href=${`/ui/executions/${enc(e.id)}`}>${e.id}</a>`,
        `${e.workflow} v${e.version}`, html`<${Badge} value=${e.status} />`, html`<${Time} at=${e.created_at} />`])}
      empty="No executions." />
  </${Page}>`;
}

const ms = (a, b) => (a && b ? new Date(b).getTime() - new Date(a).getTime() : 0);

function Timeline({ steps }) {
  const starts = steps.map((s) => s.started_at).filter(Boolean).map((t) => new Date(t).getTime());
  if (!starts.length) return null;
  const t0 = Math.min(...starts);
  const ends = steps.map((s) => new Date(s.ended_at || Date.now()).getTime());
  const span = Math.max(1, Math.max(...ends) - t0);
  return html`<ol class="timeline" aria-label="Step timeline">${steps.map((s) => {
    const start = s.started_at ? new Date(s.started_at).getTime() - t0 : 0;
    const len = s.started_at ? ms(s.started_at, s.ended_at || new Date().toISOString()) : 0;
    return html`<li><span class="step-name">${s.name}</span>
      <span class="bar-track">${s.started_at && html`<span class=${`bar ${s.status}`} style=${`left:${(100 * start) / span}%;width:${Math.max(0.5, (100 * len) / span)}%`}></span>`}</span>
      <span class="step-status"><${Badge} value=${s.status} /> ${s.attempt > 1 ? `attempt ${s.attempt}` : ''}</span></li>`;
  })}</ol>`;
}

export function Execution({ id, caller }) {
  const ex = useData(() => get(`/v1/executions/${enc(id)}`), ['execution'], [id]);
  // The definition it runs (its own version): which steps each step waits for.
  const def = useData(async () => (ex.data ? get(`/v1/workflows/${enc(ex.data.workflow)}?version=${ex.data.version}`) : null),
    [], [ex.data && `${ex.data.workflow}@${ex.data.version}`]);
  const needs = {};
  for (const st of (def.data && def.data.spec && def.data.spec.steps) || []) needs[st.name] = st.needs || [];
  const [events, setEvents] = useState([]);
  const [signal, setSignal] = useState('');
  const [error, setError] = useState(null);
  useEffect(() => {
    // The execution's own event stream: each event re-reads the read model.
    const abort = new AbortController();
    setEvents([]);
    let last = '';
    (async () => {
      while (!abort.signal.aborted) {
        try {
          await readEventStream(`/v1/executions/${enc(id)}/events`, {
            lastEventId: last,
            signal: abort.signal,
            onEvent: ({ id: seq, data }) => {
              if (seq) last = seq;
              try {
                const ev = JSON.parse(data);
                setEvents((prev) => [...prev, ev]);
              } catch {
                /* a comment */
              }
              ex.reload();
            },
          });
        } catch {
          /* reconnect */
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    })();
    return () => abort.abort();
  }, [id]);
  const e = ex.data;
  const ended = e && ['succeeded', 'failed', 'cancelled'].includes(e.status);
  const act = async (fn) => {
    setError(null);
    try {
      await fn();
      ex.reload();
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Page} title=${`Execution ${id}`} actions=${e && caller.canWrite && html`
      ${!ended && html`<${ConfirmButton} label="Cancel" danger question="Cancel this execution?"
        onConfirm=${() => api('POST', `/v1/executions/${enc(id)}/cancel`)} />`}
      ${e.status === 'failed' || e.status === 'cancelled' ? html`<${ConfirmButton} label="Retry" question="Run the steps that did not succeed again?"
        onConfirm=${() => api('POST', `/v1/executions/${enc(id)}/retry`)} />` : null}`}>
    <p><a href="/ui/executions">← Executions</a></p>
    <${ErrorBox} error=${ex.error || error} />
    ${e && html`<dl class="facts">
        <dt>Workflow</dt><dd>${e.workflow} v${e.version}</dd>
        <dt>Status</dt><dd><${Badge} value=${e.status} /></dd>
        <dt>Created</dt><dd><${Time} at=${e.created_at} /></dd>
        ${e.trace_id && html`<dt>Trace</dt><dd><code>${e.trace_id}</code></dd>`}
      </dl>
      <h2>Steps</h2>
      <${Dag} steps=${e.steps || []} needs=${needs} />
      <${Timeline} steps=${e.steps || []} />
      <${Table} label="Steps" head=${['Step', 'After', 'Type', 'Status', 'Attempt', 'Output / error']}
        rows=${(e.steps || []).map((s) => [html`<span id=${`step-${s.name}`}>${s.name}</span>`, (needs[s.name] || []).join(', ') || '—', s.type, html`<${Badge} value=${s.status} />`, s.attempt || '',
          html`<code class="json">${JSON.stringify(s.error || s.output || null)}</code>`])} />
      <h2>Input and output</h2>
      <pre class="json" tabindex="0">${JSON.stringify({ input: e.input, output: e.output, error: e.error }, null, 2)}</pre>
      ${caller.canWrite && !ended && html`<form class="inline" onSubmit=${(ev) => { ev.preventDefault(); act(() => api('POST', `/v1/executions/${enc(id)}/signals/${enc(signal)}`, { payload: {} })); }}>
        <label for="signal">Signal</label>
        <input id="signal" value=${signal} onInput=${(ev) => setSignal(ev.target.value)} required />
        <button type="submit">Send</button>
      </form>`}`}
    <h2>Events</h2>
    <${Table} label="Execution events" head=${['#', 'Kind', 'Step', 'When']}
      rows=${events.map((v) => [v.seq, v.kind, v.step || '', html`<${Time} at=${v.at} />`])} empty="No events yet." />
  </${Page}>`;
}
