// Charts of the server's own metrics over the last hour (GET /v1/metrics/history: a point per
// step, recorded by the leader): API traffic and latency, executions, the gateway's routes.
import { useEffect } from 'preact/hooks';
import { get } from './api.js';
import { Chart } from './chart.js';
import { html, useData, ErrorBox } from './components.js';

// The history, read again every step (a minute) while the page is open.
export function useMetricHistory(range = '1h') {
  const history = useData(() => get(`/v1/metrics/history?range=${range}`), [], [range]);
  useEffect(() => {
    const t = setInterval(() => history.reload(), 60000);
    return () => clearInterval(t);
  }, [range]);
  return history;
}

// Chart data [xs, ...ys] of the series named `name`, one line per `groupOf(labels)` (null: left
// out), summed, each value through `scale`. Counters have a point only in steps with something
// in them: a step without one is 0; quantiles are not summed and a missing one is a gap.
export function toChart(history, name, groupOf, { scale = (v) => v, gaps = false, order = [] } = {}) {
  const series = ((history && history.series) || []).filter((s) => s.name === name);
  const groups = new Map();
  const times = new Set();
  for (const s of series) {
    const g = groupOf(s.labels || {});
    if (g == null) continue;
    if (!groups.has(g)) groups.set(g, new Map());
    const byTime = groups.get(g);
    for (const p of s.points) {
      const t = new Date(p.at).getTime() / 1000;
      times.add(t);
      byTime.set(t, (byTime.get(t) || 0) + p.value);
    }
  }
  const names = [...groups.keys()].sort((a, b) => {
    const ia = order.indexOf(a), ib = order.indexOf(b);
    return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib) || String(a).localeCompare(String(b));
  });
  const xs = [...times].sort((a, b) => a - b);
  const ys = names.map((g) => xs.map((t) => {
    const v = groups.get(g).get(t);
    return v === undefined ? (gaps ? null : 0) : scale(v);
  }));
  return { names, data: [xs, ...ys] };
}

// The busiest `n` groups of a chart (by their sum), the rest left out.
export function busiest(chart, n) {
  const totals = chart.names.map((_, i) => chart.data[i + 1].reduce((a, v) => a + (v || 0), 0));
  const keep = chart.names.map((_, i) => i).sort((a, b) => totals[b] - totals[a]).slice(0, n);
  return { names: keep.map((i) => chart.names[i]), data: [chart.data[0], ...keep.map((i) => chart.data[i + 1])] };
}

export function MetricChart({ title, chart, empty, height }) {
  if (!chart.names.length || !chart.data[0].length) return html`<p class="muted">${empty}</p>`;
  return html`<${Chart} title=${title} names=${chart.names} data=${chart.data} height=${height} />`;
}

const perSecond = (step) => (v) => v / step;
const ms = (v) => v / 1000;

// The overview's charts: the API's requests by status class and latency, executions.
export function ServerCharts() {
  const history = useMetricHistory();
  const h = history.data;
  const step = (h && h.step_seconds) || 60;
  const empty = 'Recorded every minute: the chart appears once there is something to show.';
  const started = toChart(h, 'executions_started', () => 'started');
  const ended = toChart(h, 'executions_ended', (l) => l.status);
  // One chart of both: their times merged.
  const xs = [...new Set([...started.data[0], ...ended.data[0]])].sort((a, b) => a - b);
  const at = (c, i) => xs.map((t) => { const k = c.data[0].indexOf(t); return k < 0 ? 0 : c.data[i + 1][k]; });
  const executions = {
    names: [...started.names, ...ended.names],
    data: [xs, ...started.names.map((_, i) => at(started, i)), ...ended.names.map((_, i) => at(ended, i))],
  };
  return html`<${ErrorBox} error=${history.error} />
    <div class="grid charts">
      <div><${MetricChart} title="API requests per second" empty=${empty}
        chart=${toChart(h, 'api_requests', (l) => l.class, { scale: perSecond(step), order: ['2xx', '3xx', '4xx', '5xx'] })} /></div>
      <div><${MetricChart} title="API latency (ms)" empty=${empty}
        chart=${toChart(h, 'api_latency_us', (l) => `p${Math.round(Number(l.quantile) * 100)}`, { scale: ms, gaps: true, order: ['p50', 'p95', 'p99'] })} /></div>
      <div><${MetricChart} title="Executions per minute" empty=${empty} chart=${executions} /></div>
    </div>`;
}

// The gateway's busiest routes: requests per second and p95 latency.
export function RouteCharts() {
  const history = useMetricHistory();
  const h = history.data;
  const step = (h && h.step_seconds) || 60;
  const empty = 'No requests through the routes in the last hour (recorded every minute).';
  return html`<${ErrorBox} error=${history.error} />
    <div class="grid charts">
      <div><${MetricChart} title="Requests per second, busiest routes" empty=${empty}
        chart=${busiest(toChart(h, 'gateway_requests', (l) => l.route, { scale: perSecond(step) }), 5)} /></div>
      <div><${MetricChart} title="p95 latency (ms), busiest routes" empty=${empty}
        chart=${busiest(toChart(h, 'gateway_latency_us', (l) => (l.quantile === '0.95' ? l.route : null), { scale: ms, gaps: true }), 5)} /></div>
    </div>`;
}
