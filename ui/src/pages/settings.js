// Variables (with an environment's effective cc-a-* set), schedules and firings, routes,
// alerts and silences, the audit log, keys.
import { useState } from 'preact/hooks';
import { api, get, getAll } from '../api.js';
import { html, useData, Ago, Badge, ConfirmButton, ErrorBox, Page, Table, Time, enc } from '../components.js';
import { RouteCharts } from '../metrics.js';

export function Variables() {
  const vars = useData(() => getAll('/v1/variables'), ['variable']);
  const envs = useData(() => getAll('/v1/environments'), ['environment']);
  const [env, setEnv] = useState('');
  const effective = useData(async () => (env ? get(`/v1/cc/agent?environment=${enc(env)}`) : null), ['variable', 'environment'], [env]);
  return html`<${Page} title="Variables">
    <${ErrorBox} error=${vars.error} />
    <${Table} label="Variables" head=${['Key', 'Scope', 'Value', 'Updated']}
      rows=${vars.data && vars.data.map((v) => [html`<code>${v.key}</code>`, v.environment || 'global',
        html`<code class="value">${v.value}</code>`, html`<${Ago} at=${v.updated_at} />`])}
      empty="No variables yet." />
    <h2>Effective agent set of an environment</h2>
    <label for="env-pick">Environment</label>
    <select id="env-pick" value=${env} onChange=${(e) => setEnv(e.target.value)}>
      <option value="">choose…</option>
      ${(envs.data || []).map((e) => html`<option value=${e.name}>${e.name}</option>`)}
    </select>
    <${ErrorBox} error=${effective.error} />
    ${env && effective.data && html`<${Table} label="Effective variables" head=${['Key', 'Value']}
      rows=${Object.entries(effective.data).map(([k, v]) => [html`<code>${k}</code>`, html`<code class="value">${v}</code>`])}
      empty="No cc-a-* values apply." />`}
  </${Page}>`;
}

export function Schedules() {
  const list = useData(async () => {
    const items = await getAll('/v1/schedules');
    return Promise.all(items.slice(0, 200).map((s) => get(`/v1/schedules/${enc(s.name)}`)));
  }, ['schedule', 'firing']);
  return html`<${Page} title="Schedules">
    <${ErrorBox} error=${list.error} />
    <${Table} label="Schedules" head=${['Schedule', 'When', 'Zone', 'Next fire (schedule zone)', 'Last firing']}
      rows=${list.data && list.data.map((s) => {
        const next = s.status && s.status.next_fires && s.status.next_fires[0];
        const zone = s.spec.timezone || 'UTC';
        let local = '—';
        if (next) {
          try {
            local = new Date(next).toLocaleString('sv-SE', { timeZone: zone });
          } catch {
            local = next;
          }
        }
        const last = s.status && s.status.last_firing;
        return [html`<a href=${`/ui/schedules/${enc(s.name)}`}>${s.name}</a>`, html`<code>${s.spec.cron || s.spec.window || ''}</code>`, zone,
          next ? html`<time datetime=${next} title=${next}>${local}</time>` : '—',
          last ? html`<${Badge} value=${last.status} /> <${Ago} at=${last.fired_at || last.due} />` : '—'];
      })}
      empty="No schedules yet." />
  </${Page}>`;
}

export function Schedule({ name, caller }) {
  const s = useData(() => get(`/v1/schedules/${enc(name)}`), ['schedule', 'firing'], [name]);
  const firings = useData(() => get(`/v1/schedules/${enc(name)}/firings?limit=50`), ['schedule', 'firing'], [name]);
  return html`<${Page} title=${`Schedule ${name}`} actions=${caller.canWrite && html`<${ConfirmButton} label="Trigger now"
      question=${`Fire ${name} now?`} onConfirm=${() => api('POST', `/v1/schedules/${enc(name)}/trigger`)} />`}>
    <p><a href="/ui/schedules">← Schedules</a></p>
    <${ErrorBox} error=${s.error} />
    ${s.data && html`<pre class="json" tabindex="0">${JSON.stringify(s.data.spec, null, 2)}</pre>`}
    <h2>Firings</h2>
    <${Table} label="Firings" head=${['Due', 'Fired', 'Kind', 'Status', 'Result']}
      rows=${firings.data && firings.data.items.map((f) => [html`<${Time} at=${f.due} />`, html`<${Time} at=${f.fired_at} />`,
        f.kind, html`<${Badge} value=${f.status} />`, f.result || ''])}
      empty="Not fired yet." />
  </${Page}>`;
}

export function Routes() {
  const list = useData(() => getAll('/v1/routes'), ['route']);
  return html`<${Page} title="Routes">
    <${ErrorBox} error=${list.error} />
    <${Table} label="Routes" head=${['Route', 'Target', 'Auth', 'Upstream health']}
      rows=${list.data && list.data.map((r) => [html`<code>/svc/${r.name}/</code>`,
        r.spec.environment ? `environment ${r.spec.environment}` : (r.spec.upstreams || []).map((u) => (typeof u === 'string' ? u : u.url)).join(', '),
        r.spec.auth || 'required',
        r.status ? r.status.upstreams.map((u) => html`<span class="upstream">${u.url} <${Badge} value=${u.ejected ? 'ejected' : u.ready ? 'ready' : 'unhealthy'} /> </span>`)
          : r.spec.environment ? html`<span class="muted">its running instances</span>` : '—'])}
      empty="No routes yet." />
    <h2>The last hour</h2>
    <${RouteCharts} />
  </${Page}>`;
}

export function Alerts() {
  const list = useData(async () => {
    const rules = await getAll('/v1/alerts');
    return Promise.all(rules.slice(0, 200).map((r) => get(`/v1/alerts/${enc(r.name)}`)));
  }, ['alert']);
  return html`<${Page} title="Alerts">
    <${ErrorBox} error=${list.error} />
    <${Table} label="Alert rules" head=${['Rule', 'Signal', 'Severity', 'State', 'Silenced until']}
      rows=${list.data && list.data.map((r) => {
        const states = ((r.status && r.status.alerts) || []).map((a) => a.state);
        const worst = states.includes('firing') ? 'firing' : states.includes('pending') ? 'pending' : 'inactive';
        return [html`<a href=${`/ui/alerts/${enc(r.name)}`}>${r.name}</a>`, html`<code>${r.spec.signal}</code>`,
          r.spec.severity, html`<${Badge} value=${worst} />`, r.silence ? html`<${Time} at=${r.silence.until} />` : '—'];
      })}
      empty="No alert rules." />
  </${Page}>`;
}

export function Alert({ name, caller }) {
  const r = useData(() => get(`/v1/alerts/${enc(name)}`), ['alert'], [name]);
  const history = useData(() => get(`/v1/alerts/${enc(name)}/history?limit=50`), ['alert'], [name]);
  return html`<${Page} title=${`Alert ${name}`} actions=${caller.canWrite && r.data && html`
      <${ConfirmButton} label="Silence 1h" question=${`Silence ${name} for an hour?`}
        onConfirm=${() => api('POST', `/v1/alerts/${enc(name)}/silence`, { for: '1h', comment: 'from the dashboard' })} />`}>
    <p><a href="/ui/alerts">← Alerts</a></p>
    <${ErrorBox} error=${r.error} />
    ${r.data && html`<${Table} label="Alerts" head=${['Labels', 'State', 'Value', 'Since']}
      rows=${((r.data.status && r.data.status.alerts) || []).map((a) => [
        Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`).join(' '), html`<${Badge} value=${a.state} />`,
        a.value, html`<${Time} at=${a.active_since} />`])}
      empty="No series match this rule now." />`}
    <h2>History</h2>
    <${Table} label="Alert history" head=${['When', 'Transition', 'Labels', 'Value']}
      rows=${history.data && history.data.items.map((h) => [html`<${Time} at=${h.at} />`, html`<${Badge} value=${h.transition} />`,
        Object.entries(h.labels || {}).map(([k, v]) => `${k}=${v}`).join(' '), h.value])}
      empty="No transitions yet." />
  </${Page}>`;
}

export function Audit({ query }) {
  const [kind, setKind] = useState(query.get('kind') || '');
  const [actor, setActor] = useState('');
  const [applied, setApplied] = useState({ kind, actor });
  const list = useData(async () => {
    const q = new URLSearchParams({ limit: '100' });
    if (applied.kind) q.set('kind', applied.kind);
    if (applied.actor) q.set('actor', applied.actor);
    return (await get(`/v1/audit?${q}`)).items;
  }, ['*'], [applied.kind, applied.actor]);
  return html`<${Page} title="Audit log">
    <form class="inline" onSubmit=${(e) => { e.preventDefault(); setApplied({ kind, actor }); }}>
      <label for="kind">Kind</label><input id="kind" value=${kind} onInput=${(e) => setKind(e.target.value)} />
      <label for="actor">Actor</label><input id="actor" value=${actor} onInput=${(e) => setActor(e.target.value)} />
      <button type="submit">Filter</button>
    </form>
    <${ErrorBox} error=${list.error} />
    <${Table} label="Audit log" head=${['When', 'Actor', 'What', 'Result']}
      rows=${list.data && list.data.map((c) => [html`<${Time} at=${c.at} />`, `${c.actor.key} (${c.actor.role})`,
        `${c.kind} ${c.name} ${c.op}`, html`<${Badge} value=${c.result} />`])}
      empty="Nothing matches." />
  </${Page}>`;
}

export function Keys({ caller }) {
  const list = useData(() => getAll('/v1/keys'), ['key']);
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      setCreated(await api('POST', '/v1/keys', { name, role }));
      setName('');
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Page} title="Keys">
    <${ErrorBox} error=${list.error || error} />
    ${created && html`<div class="notice" role="status">Key <strong>${created.name}</strong> created. Copy it now: it is not shown again.
      <pre class="secret" tabindex="0">${created.key}</pre><button onClick=${() => setCreated(null)}>Done</button></div>`}
    ${caller.canWrite && html`<form class="inline" onSubmit=${create}>
      <label for="key-name">Name</label><input id="key-name" value=${name} onInput=${(e) => setName(e.target.value)} required />
      <label for="key-role">Role</label>
      <select id="key-role" value=${role} onChange=${(e) => setRole(e.target.value)}>
        <option value="viewer">viewer</option><option value="user">user</option>
        ${caller.role === 'admin' && html`<option value="admin">admin</option>`}
      </select>
      <button type="submit" class="primary">Create key</button>
    </form>`}
    <${Table} label="Keys" head=${['Name', 'Role', 'Tenant', 'Created', '']}
      rows=${list.data && list.data.map((k) => [k.name, k.role, k.tenant, html`<${Time} at=${k.created_at} />`,
        caller.canWrite && k.id !== caller.id ? html`<${ConfirmButton} label="Revoke" danger question=${`Revoke key ${k.name}? Whatever uses it stops working.`}
          onConfirm=${async () => { await api('DELETE', `/v1/keys/${enc(k.id)}`); list.reload(); }} />` : ''])} />
  </${Page}>`;
}
