// A small time-series chart (uPlot): one line per series, the x axis in the browser's zone.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { html } from './components.js';

const colors = ['#1f6feb', '#b35900', '#1a7f37', '#8250df', '#cf222e'];

// `data`: [xs (unix seconds), ys1, ys2, ...]; `names`: a name per y series.
export function Chart({ title, names, data, height = 180 }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = Math.max(240, box.current.clientWidth);
    plot.current = new uPlot(
      {
        title,
        width,
        height,
        series: [{}, ...names.map((n, i) => ({ label: n, stroke: colors[i % colors.length], width: 2 }))],
        axes: [{}, { size: 56 }],
      },
      data,
      box.current,
    );
    const resize = () => plot.current && plot.current.setSize({ width: Math.max(240, box.current.clientWidth), height });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.current.destroy();
      plot.current = null;
    };
  }, [names.join(',')]);
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);
  return html`<figure class="chart" ref=${box} aria-label=${title}></figure>`;
}
