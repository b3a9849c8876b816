// What is going on, at a glance: each count links to its page.
import { get, getAll } from '../api.js';
import { html, useData, Badge, Card, ErrorBox, Page, Table, Ago, enc } from '../components.js';
import { ServerCharts } from '../metrics.js';

const count = (items, key) => items.reduce((m, x) => ((m[key(x)] = (m[key(x)] || 0) + 1), m), {});

function Counts({ counts, href }) {
  const keys = Object.keys(counts).sort();
  if (!keys.length) return html`<p class="muted">None.</p>`;
  return html`<ul class="counts">${keys.map(
    (k) => html`<li><a href=${href(k)}><${Badge} value=${k} /> <span class="num">${counts[k]}</span></a></li>`,
  )}</ul>`;
}

// Whole lists: a second between reads while changes keep coming.
export function Overview() {
  const envs = useData(() => getAll('/v1/environments'), ['environment', 'instance'], [], 1000);
  const queues = useData(async () => {
    const list = (await getAll('/v1/queues')).slice(0, 50);
    return Promise.all(list.map((q) => get(`/v1/queues/${enc(q.name)}`)));
  }, ['queue', 'topic'], [], 1000);
  const executions = useData(async () => {
    const page = await get('/v1/executions?limit=500');
    const hour = Date.now() - 3600e3;
    return (page.items || []).filter((e) => new Date(e.created_at).getTime() >= hour);
  }, ['execution', 'workflow'], [], 1000);
  const alerts = useData(async () => {
    const rules = (await getAll('/v1/alerts')).slice(0, 100);
    const full = await Promise.all(rules.map((r) => get(`/v1/alerts/${enc(r.name)}`)));
    return full.flatMap((r) =>
      ((r.status && r.status.alerts) || []).filter((a) => a.state === 'firing').map((a) => ({ rule: r, alert: a })),
    );
  }, ['alert'], [], 1000);
  const changes = useData(() => get('/v1/audit?limit=12'), ['*'], [], 1000);

  const envItems = envs.data || [];
  const running = envItems.reduce((n, e) => n + ((e.status && e.status.running) || 0), 0);
  const desired = envItems.reduce((n, e) => n + ((e.status && e.status.desired) || 0), 0);
  return html`<${Page} title="Overview">
    <div class="grid">
      <${Card} title="Environments" href="/ui/environments">
        <${ErrorBox} error=${envs.error} />
        ${envs.data && html`<${Counts} counts=${count(envItems, (e) => (e.status && e.status.phase) || 'unknown')}
            href=${(p) => `/ui/environments?phase=${enc(p)}`} />
          <p><span class="num">${running}</span> of <span class="num">${desired}</span> instances running
          in <span class="num">${envItems.length}</span> environments</p>`}
      </${Card}>
      <${Card} title="Queues" href="/ui/queues">
        <${ErrorBox} error=${queues.error} />
        <${Table} label="Queues" head=${['Queue', 'Visible', 'In flight', 'Oldest', 'DLQ']}
          rows=${queues.data && queues.data.map((q) => [
            html`<a href=${`/ui/queues/${enc(q.name)}`}>${q.name}</a>`,
            q.stats.visible, q.stats.in_flight, `${Math.round(q.stats.oldest_age_seconds)} s`,
            q.stats.dlq_depth == null ? '—' : q.stats.dlq_depth])}
          empty="No queues." />
      </${Card}>
      <${Card} title="Executions, last hour" href="/ui/executions">
        <${ErrorBox} error=${executions.error} />
        ${executions.data && html`<${Counts} counts=${count(executions.data, (e) => e.status)}
            href=${(s) => `/ui/executions?status=${enc(s)}`} />`}
      </${Card}>
      <${Card} title="Firing alerts" href="/ui/alerts">
        <${ErrorBox} error=${alerts.error} />
        <${Table} label="Firing alerts" head=${['Rule', 'Labels', 'Since']}
          rows=${alerts.data && alerts.data.map(({ rule, alert }) => [
            html`<a href=${`/ui/alerts/${enc(rule.name)}`}>${rule.name}</a>`,
            Object.entries(alert.labels || {}).map(([k, v]) => `${k}=${v}`).join(' '),
            html`<${Ago} at=${alert.fired_at || alert.active_since} />`])}
          empty="Nothing is firing." />
      </${Card}>
      <${Card} title="Recent changes" href="/ui/audit">
        <${ErrorBox} error=${changes.error} />
        <${Table} label="Recent changes" head=${['When', 'What', 'Result']}
          rows=${changes.data && changes.data.items.map((c) => [
            html`<${Ago} at=${c.at} />`, `${c.kind} ${c.name} ${c.op}`, html`<${Badge} value=${c.result} />`])}
          empty="No changes yet." />
      </${Card}>
    </div>
    <h2>The last hour</h2>
    <${ServerCharts} />
  </${Page}>`;
}
