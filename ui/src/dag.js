// An execution's steps drawn as a graph (SVG): a box per step coloured by its status, an arrow
// from each step to the steps that need it. Each box links to the step's row below.
import { html, tone } from './components.js';
import { layoutDag } from './dag_layout.js';

const W = 150, H = 36, GAP_X = 48, GAP_Y = 14, PAD = 4;

export function Dag({ steps, needs }) {
  const { nodes, edges, cols, rows } = layoutDag(steps.map((s) => ({ name: s.name, needs: needs[s.name] || [] })));
  if (!nodes.length) return null;
  const status = new Map(steps.map((s) => [s.name, s.status || 'pending']));
  const at = new Map(nodes.map((n) => [n.name, { x: PAD + n.col * (W + GAP_X), y: PAD + n.row * (H + GAP_Y) }]));
  const width = PAD * 2 + cols * W + (cols - 1) * GAP_X;
  const height = PAD * 2 + rows * H + (rows - 1) * GAP_Y;
  const short = (s) => (s.length > 18 ? `${s.slice(0, 17)}…` : s);
  return html`<div class="dag">
    <svg width=${width} height=${height} viewBox=${`0 0 ${width} ${height}`} role="group" aria-label="Steps as a graph">
      <defs><marker id="dag-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="8" markerHeight="8" orient="auto">
        <path d="M0,0 L8,4 L0,8 z" class="dag-arrow" /></marker></defs>
      ${edges.map(({ from, to }) => {
        const a = at.get(from), b = at.get(to);
        const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x - 2, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
        return html`<path class="dag-edge" d=${`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`} marker-end="url(#dag-arrow)" />`;
      })}
      ${nodes.map((n) => {
        const { x, y } = at.get(n.name);
        const st = status.get(n.name);
        return html`<a href=${`#step-${n.name}`} aria-label=${`${n.name}: ${st}`}>
          <title>${n.name}: ${st}</title>
          <rect x=${x} y=${y} width=${W} height=${H} rx="6" class=${`dag-node ${tone[st] || 'plain'}`} />
          <text x=${x + 10} y=${y + H / 2 + 5} class="dag-label">${short(n.name)}</text>
        </a>`;
      })}
    </svg>
  </div>`;
}
