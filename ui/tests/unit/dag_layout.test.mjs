// The drawn graph's layout (ui/src/dag_layout.js): columns by the longest chain of needs, rows
// that follow the steps they need.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layoutDag } from '../../src/dag_layout.js';

const place = (layout) => Object.fromEntries(layout.nodes.map((n) => [n.name, [n.col, n.row]]));

test('a step goes one column after the last step it needs', () => {
  const l = layoutDag([
    { name: 'extract' },
    { name: 'clean', needs: ['extract'] },
    { name: 'load', needs: ['extract', 'clean'] },
    { name: 'notify' },
  ]);
  assert.deepEqual(place(l), { extract: [0, 0], notify: [0, 1], clean: [1, 0], load: [2, 0] });
  assert.deepEqual(l.edges, [
    { from: 'extract', to: 'clean' }, { from: 'extract', to: 'load' }, { from: 'clean', to: 'load' },
  ]);
  assert.equal(l.cols, 3);
  assert.equal(l.rows, 2);
});

test('rows follow the steps they need, so edges cross less', () => {
  const l = layoutDag([
    { name: 'a' }, { name: 'b' },
    { name: 'after-b', needs: ['b'] }, { name: 'after-a', needs: ['a'] },
  ]);
  assert.deepEqual(place(l), { a: [0, 0], b: [0, 1], 'after-a': [1, 0], 'after-b': [1, 1] });
});

test('unknown needs, self needs and cycles do not hang or throw', () => {
  const l = layoutDag([
    { name: 'x', needs: ['ghost', 'x'] },
    { name: 'p', needs: ['q'] }, { name: 'q', needs: ['p'] },
  ]);
  assert.equal(l.nodes.length, 3);
  assert.deepEqual(place(l).x, [0, 0]);
  assert.deepEqual(layoutDag([]), { nodes: [], edges: [], cols: 0, rows: 0 });
});
