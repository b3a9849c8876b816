// Where each step of a workflow goes in its drawn graph: a column per depth (the longest chain
// of `needs` before it), rows within a column ordered by where the steps they need sit, so
// edges cross less. Pure, no DOM: tested by ui/tests/unit/.
export function layoutDag(steps) {
  const byName = new Map(steps.map((s, i) => [s.name, { ...s, index: i, needs: (s.needs || []).filter((n) => n !== s.name) }]));
  const depth = new Map();
  const depthOf = (name, seen = new Set()) => {
    if (depth.has(name)) return depth.get(name);
    const s = byName.get(name);
    if (!s || seen.has(name)) return 0;  // unknown or a cycle (a definition never has one)
    seen.add(name);
    const d = s.needs.reduce((m, n) => (byName.has(n) ? Math.max(m, depthOf(n, seen) + 1) : m), 0);
    seen.delete(name);
    depth.set(name, d);
    return d;
  };
  const columns = [];
  for (const s of byName.values()) {
    const d = depthOf(s.name);
    (columns[d] = columns[d] || []).push(s);
  }
  const row = new Map();
  columns.forEach((col, c) => {
    if (c > 0) {
      // The mean row of the steps it needs; ties keep the definition's order.
      const centre = (s) => {
        const rows = s.needs.filter((n) => row.has(n)).map((n) => row.get(n));
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : Infinity;
      };
      col.sort((a, b) => centre(a) - centre(b) || a.index - b.index);
    }
    col.forEach((s, r) => row.set(s.name, r));
  });
  const nodes = [...byName.values()].map((s) => ({ name: s.name, col: depth.get(s.name), row: row.get(s.name) }));
  const edges = [];
  for (const s of byName.values()) {
    for (const n of s.needs) if (byName.has(n)) edges.push({ from: n, to: s.name });
  }
  return { nodes, edges, cols: columns.length, rows: Math.max(0, ...columns.map((c) => c.length)) };
}
