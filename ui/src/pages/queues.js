// Queues and topics: depth, in flight, oldest age, rates over time, dead letters (redrive,
// purge), subscriptions.
import { useEffect, useState } from 'preact/hooks';
import { api, get, getAll } from '../api.js';
import { Chart } from '../chart.js';
import { html, useData, ConfirmButton, ErrorBox, Page, Table, Time, enc } from '../components.js';

export function Queues() {
  const queues = useData(async () => {
    const list = await getAll('/v1/queues');
    return Promise.all(list.slice(0, 200).map((q) => get(`/v1/queues/${enc(q.name)}`)));
  }, ['queue']);
  const topics = useData(() => getAll('/v1/topics'), ['topic']);
  return html`<${Page} title="Queues and topics">
    <${ErrorBox} error=${queues.error || topics.error} />
    <h2>Queues</h2>
    <${Table} label="Queues" head=${['Queue', 'Visible', 'In flight', 'Delayed', 'Oldest', 'Dead-letter queue', 'DLQ depth']}
      rows=${queues.data && queues.data.map((q) => [
        html`<a href=${`/ui/queues/${enc(q.name)}`}>${q.name}</a>`, q.stats.visible, q.stats.in_flight,
        q.stats.delayed, `${Math.round(q.stats.oldest_age_seconds)} s`,
        q.spec.dead_letter_queue ? html`<a href=${`/ui/queues/${enc(q.spec.dead_letter_queue)}`}>${q.spec.dead_letter_queue}</a>` : '—',
        q.stats.dlq_depth ?? '—'])}
      empty="No queues yet." />
    <h2>Topics</h2>
    <${Table} label="Topics" head=${['Topic', 'Subscriptions']}
      rows=${topics.data && topics.data.map((t) => [t.name,
        (t.subscriptions || []).map((s) => html`<a href=${`/ui/queues/${enc(s.queue)}`}>${s.queue}</a> `)])}
      empty="No topics yet." />
  </${Page}>`;
}

// The queue's last hour, a point a minute (GET /v1/queues/{name}/history): rates per second
// from the counters' differences, and the depth.
function toSeries(points) {
  const t = [], sent = [], received = [], acked = [], depth = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1], b = points[i];
    const dt = (new Date(b.at) - new Date(a.at)) / 1000;
    if (dt <= 0) continue;
    t.push(new Date(b.at).getTime() / 1000);
    sent.push(Math.max(0, (b.sent - a.sent) / dt));
    received.push(Math.max(0, (b.received - a.received) / dt));
    acked.push(Math.max(0, (b.acked - a.acked) / dt));
    depth.push(b.depth);
  }
  return { rates: [t, sent, received, acked], depth: [t, depth] };
}

export function Queue({ name, caller }) {
  const q = useData(() => get(`/v1/queues/${enc(name)}`), ['queue'], [name]);
  const history = useData(() => get(`/v1/queues/${enc(name)}/history?range=1h`), [], [name]);
  // Messages move without changes to the queue's settings: read the figures again now and then.
  useEffect(() => {
    const t = setInterval(() => q.reload(), 5000);
    const h = setInterval(() => history.reload(), 60000);
    return () => {
      clearInterval(t);
      clearInterval(h);
    };
  }, [name]);
  const series = toSeries((history.data && history.data.items) || []);
  const [result, setResult] = useState(null);
  const s = q.data && q.data.stats;
  const write = caller.canWrite;
  return html`<${Page} title=${`Queue ${name}`} actions=${q.data && write && html`
      <${ConfirmButton} label="Redrive" question=${`Move the messages of ${name} back to the queues they came from?`}
        onConfirm=${async () => { const r = await api('POST', `/v1/queues/${enc(name)}/redrive`, {}); setResult(`${r.moved} messages moved back`); q.reload(); }} />
      <${ConfirmButton} label="Purge" danger question=${`Delete every message in ${name}?`}
        onConfirm=${async () => { const r = await api('POST', `/v1/queues/${enc(name)}/purge`); setResult(`${r.purged} messages purged`); q.reload(); }} />`}>
    <p><a href="/ui/queues">← Queues</a></p>
    <${ErrorBox} error=${q.error} />
    ${result && html`<p class="notice" role="status">${result}</p>`}
    ${s && html`<dl class="facts">
      <dt>Visible</dt><dd class="num">${s.visible}</dd>
      <dt>In flight</dt><dd class="num">${s.in_flight}</dd>
      <dt>Delayed</dt><dd class="num">${s.delayed}</dd>
      <dt>Oldest</dt><dd>${Math.round(s.oldest_age_seconds)} s</dd>
      <dt>Dead-letter queue</dt><dd>${q.data.spec.dead_letter_queue ? html`<a href=${`/ui/queues/${enc(q.data.spec.dead_letter_queue)}`}>${q.data.spec.dead_letter_queue}</a> (${s.dlq_depth} messages)` : '—'}</dd>
      <dt>Counters</dt><dd>sent ${s.sent} · received ${s.received} · acked ${s.acked} · dead-lettered ${s.dead_lettered}</dd>
      <dt>Visibility timeout</dt><dd>${q.data.spec.visibility_timeout}</dd>
      <dt>Max receives</dt><dd>${q.data.spec.max_receives || '—'}</dd>
    </dl>
    <h2>The last hour</h2>
    ${series.rates[0].length
      ? html`<${Chart} title="Messages per second" names=${['sent', 'received', 'acked']} data=${series.rates} />
          <${Chart} title="Depth" names=${['messages']} data=${series.depth} height=${140} />`
      : html`<p class="muted">The figures are recorded every minute: the charts appear after two.</p>`}`}
    <h2>Messages</h2>
    <${Messages} name=${name} />
  </${Page}>`;
}

// A look at the messages, oldest first (GET /v1/queues/{name}/messages: nothing is received).
function Messages({ name }) {
  const [pages, setPages] = useState(1);
  const list = useData(async () => {
    let items = [];
    let cursor = '';
    for (let p = 0; p < pages; p++) {
      const page = await get(`/v1/queues/${enc(name)}/messages?limit=20${cursor ? `&cursor=${enc(cursor)}` : ''}`);
      items = items.concat(page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return { items, more: !!cursor };
  }, ['queue'], [name, pages]);
  const short = (b) => (b.length > 200 ? `${b.slice(0, 200)}…` : b);
  return html`<div>
    <${ErrorBox} error=${list.error} />
    <${Table} label="Messages" head=${['Id', 'State', 'Receives', 'From', 'Sent', 'Body']}
      rows=${list.data && list.data.items.map((m) => [m.id, m.state, m.receive_count, m.source || '—',
        html`<${Time} at=${m.sent_at} />`,
        m.body.length > 200
          ? html`<details><summary><code class="value">${short(m.body)}</code></summary><pre class="json" tabindex="0">${m.body}</pre></details>`
          : html`<code class="value">${m.body}</code>`])}
      empty="No messages." />
    ${list.data && list.data.more && html`<button onClick=${() => setPages((n) => n + 1)}>More</button>`}
  </div>`;
}
