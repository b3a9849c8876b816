// Queues and topics: depth, in flight, oldest age, rates over time, dead letters (redrive,
// purge), subscriptions.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, get, getAll } from '../api.js';
import { Chart } from '../chart.js';
import { html, useData, Ago, ConfirmButton, ErrorBox, Page, Table, enc } from '../components.js';

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

// Rates over the time the page is open: the queue's counters sampled every 5 seconds.
function useRates(name, stats) {
  const [series, setSeries] = useState([[], [], [], []]);
  const prev = useRef(null);
  useEffect(() => {
    prev.current = null;
    setSeries([[], [], [], []]);
  }, [name]);
  useEffect(() => {
    if (!stats) return;
    const now = Date.now() / 1000;
    const p = prev.current;
    prev.current = { at: now, ...stats };
    if (!p || now - p.at < 1) return;
    const rate = (k) => Math.max(0, (stats[k] - p[k]) / (now - p.at));
    setSeries((s) => {
      const keep = (a, v) => [...a.slice(-119), v];
      return [keep(s[0], now), keep(s[1], rate('sent')), keep(s[2], rate('received')), keep(s[3], rate('acked'))];
    });
  }, [stats]);
  return series;
}

export function Queue({ name, caller }) {
  const q = useData(() => get(`/v1/queues/${enc(name)}`), ['queue'], [name]);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 5000);
    return () => clearInterval(t);
  }, []);
  useEffect(() => {
    if (tick) q.reload();
  }, [tick]);
  const rates = useRates(name, q.data && q.data.stats);
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
    <${Chart} title="Messages per second (while this page is open)" names=${['sent', 'received', 'acked']} data=${rates} />`}
  </${Page}>`;
}
