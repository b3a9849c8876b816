// Environments and their instances: health, restarts, last run, run logs and live logs,
// events; scale, stop, delete, open through the proxy.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, get, getAll, readEventStream } from '../api.js';
import { navigate } from '../router.js';
import { html, useData, Ago, Badge, ConfirmButton, ErrorBox, Page, Table, Time, enc } from '../components.js';

export function Environments({ query, caller }) {
  const phase = query.get('phase') || '';
  const envs = useData(() => getAll('/v1/environments'), ['environment', 'instance']);
  const items = (envs.data || []).filter((e) => !phase || (e.status && e.status.phase) === phase);
  return html`<${Page} title="Environments">
    ${phase && html`<p>Phase <${Badge} value=${phase} /> · <a href="/ui/environments">all</a></p>`}
    <${ErrorBox} error=${envs.error} />
    <${Table} label="Environments" head=${['Name', 'Phase', 'Running', 'Provider', 'Updated']}
      rows=${envs.data && items.map((e) => [
        html`<a href=${`/ui/environments/${enc(e.name)}`}>${e.name}</a>`,
        html`<${Badge} value=${e.status.phase} />`,
        `${e.status.running} / ${e.status.desired}`,
        e.spec.provider,
        html`<${Ago} at=${e.updated_at} />`])}
      empty=${phase ? 'No environment in this phase.' : 'No environments yet: drover apply -f env.yaml'} />
  </${Page}>`;
}

function ScaleForm({ env, onDone }) {
  const [capacity, setCapacity] = useState(String(env.status.desired));
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await api('POST', `/v1/environments/${enc(env.name)}/scale`, { capacity: Number(capacity) });
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="inline" onSubmit=${submit}>
    <label for="capacity">Capacity</label>
    <input id="capacity" type="number" min="0" max="10000" value=${capacity}
      onInput=${(e) => setCapacity(e.target.value)} />
    <button type="submit" class="primary">Scale</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

export function Environment({ name, caller }) {
  const env = useData(() => get(`/v1/environments/${enc(name)}`), ['environment', 'instance'], [name]);
  const instances = useData(() => get(`/v1/environments/${enc(name)}/instances`), ['environment', 'instance'], [name]);
  const events = useData(async () => {
    const page = await get(`/v1/environments/${enc(name)}/events?limit=500`);
    return page.items.slice(-20).reverse();
  }, ['environment', 'instance'], [name]);
  const [openError, setOpenError] = useState(null);
  const e = env.data;
  const write = caller.canWrite;
  const open = async () => {
    setOpenError(null);
    try {
      const r = await api('POST', `/v1/environments/${enc(name)}/open`);
      window.open(r.url, '_blank', 'noopener');
    } catch (err) {
      setOpenError(err);
    }
  };
  return html`<${Page} title=${`Environment ${name}`} actions=${e && write && html`
      ${e.spec.service && html`<button onClick=${open}>Open</button>`}
      <${ConfirmButton} label="Stop" question=${`Scale ${name} to 0 instances?`}
        onConfirm=${() => api('POST', `/v1/environments/${enc(name)}/scale`, { capacity: 0 })} />
      <${ConfirmButton} label="Delete" danger question=${`Delete ${name}, its instances, runs and events?`}
        onConfirm=${async () => { await api('DELETE', `/v1/environments/${enc(name)}`); navigate('/environments'); }} />`}>
    <${ErrorBox} error=${env.error || openError} />
    ${e && html`<dl class="facts">
        <dt>Phase</dt><dd><${Badge} value=${e.status.phase} /></dd>
        <dt>Instances</dt><dd>${e.status.running} running of ${e.status.desired} (${e.status.desired_from})</dd>
        <dt>Provider</dt><dd>${e.spec.provider}</dd>
        <dt>Updated</dt><dd><${Time} at=${e.updated_at} /></dd>
        ${(e.status.conditions || []).map((c) => html`<dt>${c.type}</dt><dd>${c.status ? 'yes' : 'no'} — ${c.reason}</dd>`)}
      </dl>
      ${write && html`<${ScaleForm} env=${e} onDone=${env.reload} />`}`}
    <h2>Instances</h2>
    <${ErrorBox} error=${instances.error} />
    <${Table} label="Instances" head=${['Instance', 'State', 'Restarts', 'Last run', 'Heartbeat']}
      rows=${instances.data && instances.data.items.map((i) => [
        html`<a href=${`/ui/environments/${enc(name)}/instances/${enc(i.id)}`}>${i.id}</a>`,
        html`<${Badge} value=${i.state} />`,
        i.restarts,
        i.last_run ? html`<span>${i.last_run.status} · exit ${i.last_run.exit_code ?? '—'} · ${(i.last_run.duration_ms / 1000).toFixed(1)} s · <code>${(i.last_run.commit || '').slice(0, 10)}</code></span>` : html`<span class="muted">none</span>`,
        html`<${Ago} at=${i.last_heartbeat} />`])}
      empty="No instances." />
    <h2>Events</h2>
    <${Table} label="Events" head=${['When', 'Kind', 'Instance', 'Reason']}
      rows=${events.data && events.data.map((v) => [html`<${Time} at=${v.time} />`, v.kind, v.instance || '', v.reason])}
      empty="No events." />
    <h2>Live logs</h2>
    <${LiveLogs} query=${`environment=${enc(name)}`} />
  </${Page}>`;
}

export function Instance({ env, id }) {
  const inst = useData(() => get(`/v1/instances/${enc(id)}`), ['instance'], [id]);
  const runs = useData(() => get(`/v1/instances/${enc(id)}/runs?limit=20`), ['instance'], [id]);
  const [log, setLog] = useState(null);
  const i = inst.data;
  const showLog = async (seq) => setLog({ seq, text: await get(`/v1/instances/${enc(id)}/runs/${seq}/log`) });
  return html`<${Page} title=${`Instance ${id}`}>
    <p><a href=${`/ui/environments/${enc(env)}`}>← ${env}</a></p>
    <${ErrorBox} error=${inst.error} />
    ${i && html`<dl class="facts">
      <dt>State</dt><dd><${Badge} value=${i.state} /> ${i.state_reason}</dd>
      <dt>Restarts</dt><dd>${i.restarts}</dd>
      <dt>Address</dt><dd>${i.address || '—'}</dd>
      <dt>Heartbeat</dt><dd><${Ago} at=${i.last_heartbeat} /></dd>
      <dt>Created</dt><dd><${Time} at=${i.created_at} /></dd>
    </dl>`}
    <h2>Runs</h2>
    <${Table} label="Runs" head=${['Run', 'Status', 'Exit', 'Commit', 'Duration', 'Finished', '']}
      rows=${runs.data && runs.data.items.map((r) => [r.seq, html`<${Badge} value=${r.status} />`, r.main_exit ?? '—',
        html`<code>${(r.commit || '').slice(0, 10)}</code>`, `${(r.duration_ms / 1000).toFixed(1)} s`,
        html`<${Time} at=${r.finished_at} />`, html`<button onClick=${() => showLog(r.seq)}>Log</button>`])}
      empty="No runs reported yet." />
    ${log && html`<h3>Run ${log.seq} log</h3><pre class="log" tabindex="0">${log.text}</pre>`}
    <h2>Live logs</h2>
    <${LiveLogs} query=${`instance=${enc(id)}&environment=${enc(env)}`} />
  </${Page}>`;
}

// The last lines, then each new one as it is stored (GET /v1/logs?follow=true).
export function LiveLogs({ query }) {
  const [lines, setLines] = useState([]);
  const [error, setError] = useState(null);
  const box = useRef(null);
  useEffect(() => {
    const abort = new AbortController();
    let last = '';
    setLines([]);
    (async () => {
      while (!abort.signal.aborted) {
        try {
          await readEventStream(`/v1/logs?follow=true&limit=200&${query}`, {
            lastEventId: last,
            signal: abort.signal,
            onEvent: ({ id, data, event }) => {
              if (event === 'error') return;
              if (id) last = id;
              const l = JSON.parse(data);
              setLines((prev) => [...prev.slice(-499), l]);
            },
          });
        } catch (e) {
          if (abort.signal.aborted) return;
          setError(e);
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    })();
    return () => abort.abort();
  }, [query]);
  useEffect(() => {
    if (box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines]);
  return html`<div>
    <${ErrorBox} error=${error} />
    <pre class="log" ref=${box} tabindex="0" aria-label="Live logs">${lines.length ? lines.map(
      (l) => html`<span class="log-line"><${Time} at=${l.at} /> ${l.instance} ${l.stream} | ${l.line}</span>`,
    ) : html`<span class="muted">No lines yet.</span>`}</pre>
  </div>`;
}
