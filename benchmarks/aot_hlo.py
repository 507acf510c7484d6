"""Collectives of an optimized HLO module (`compiled.as_text()`), counted with their bytes per step by kind.

Pure text parsing, no JAX: used by benchmarks/aot.py and tests/test_aot.py.

* Kinds: all-gather, reduce-scatter, all-reduce, all-to-all, collective-permute. An async pair
  (`all-gather-start` / `all-gather-done`, ...) is counted once, at its `-done` op, whose result is the
  collective's output; an `async-start` wrapping e.g. a reduce-scatter is counted through the wrapped computation.
* Bytes are the collective's **result** bytes on one device (the gathered array for all-gather, the scattered
  shard for reduce-scatter, the reduced array for all-reduce, ...), summed over the arrays of a tuple result.
* Per step: a collective inside a `while` body (a `lax.scan`, e.g. scanned blocks or the sampler's steps) runs once
  per iteration, so it is multiplied by the loop's trip count (XLA's `known_trip_count`; 1 and `unknown_trip`
  when absent, read from the loop condition's `compare(i, constant(N)), direction=LT` otherwise).
  `static` counts each instruction once; `in_loop` counts the instructions inside a while body.
* TPU fuses a gradient reduce-scatter into a fusion calling a computation named `all-reduce-scatter*` (an
  all-reduce and a slice inside): it is counted as one reduce-scatter with the fusion's (scattered) result bytes.
"""

from __future__ import annotations

import re
from typing import Any

KINDS = ('all-gather', 'reduce-scatter', 'all-reduce', 'all-to-all', 'collective-permute')

_ITEMSIZE = {'pred': 1, 's8': 1, 'u8': 1, 'f8e4m3fn': 1, 'f8e5m2': 1, 's16': 2, 'u16': 2, 'f16': 2, 'bf16': 2,
             's32': 4, 'u32': 4, 'f32': 4, 's64': 8, 'u64': 8, 'f64': 8, 'c64': 8, 'c128': 16}
_ARRAY = re.compile(r'\b([a-z][a-z0-9]*)\[([0-9,]*)\]')
_COMP_HEAD = re.compile(r'^\s*(ENTRY\s+)?%?([\w.\-]+)\s+.*\{\s*$')
_INSTR = re.compile(r'^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(.*?)\s([a-z][\w\-]*)\((.*)$')
_CALLS = re.compile(r'\b(?:calls|body|condition|to_apply|true_computation|false_computation)=%?([\w.\-]+)')
_BRANCHES = re.compile(r'branch_computations=\{([^}]*)\}')
_TRIP = re.compile(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"(\d+)"')


def shape_bytes(shape_text: str) -> int:
  """Bytes of every array in an HLO shape string, e.g. `(bf16[2,4]{1,0}, f32[8])` -> 2*4*2 + 8*4."""
  total = 0
  for dtype, dims in _ARRAY.findall(shape_text):
    if dtype not in _ITEMSIZE:
      continue
    n = 1
    for d in dims.split(','):
      if d:
        n *= int(d)
    total += n * _ITEMSIZE[dtype]
  return total


def _kind(op: str) -> str | None:
  for k in KINDS:
    if op == k or op == k + '-done':
      return k
  return None


def parse_computations(hlo: str) -> tuple[dict[str, dict[str, Any]], str | None]:
  """`{name: {'collectives': [(kind, bytes)], 'calls': [(callee, trip count or None, is_loop, condition)]}}` and
  the entry computation's name."""
  comps: dict[str, dict[str, Any]] = {}
  entry, current = None, None
  for line in hlo.splitlines():
    head = _COMP_HEAD.match(line)
    if head and '=' not in line.split('{')[0].split('(')[0]:
      current = head.group(2)
      comps[current] = {'collectives': [], 'calls': []}
      if head.group(1):
        entry = current
      continue
    if current is None:
      continue
    m = _INSTR.match(line)
    if not m:
      continue
    shape, op, rest = m.groups()
    kind = _kind(op)
    if kind is not None:
      comps[current]['collectives'].append((kind, shape_bytes(shape)))
    if op == 'fusion' and re.search(r'\bcalls=%?all-reduce-scatter', rest):
      comps[current]['collectives'].append(('reduce-scatter', shape_bytes(shape)))
      continue
    const = re.match(r'constant\((\d+)\)', op + '(' + rest) if op == 'constant' else None
    if const and shape.startswith('s32[]'):
      comps[current].setdefault('constants', []).append(int(const.group(1)))
    if op == 'compare' and 'direction=LT' in rest:
      comps[current]['lt_compare'] = True
    if op == 'while':
      trip = _TRIP.search(rest)
      body = re.search(r'\bbody=%?([\w.\-]+)', rest)
      cond = re.search(r'\bcondition=%?([\w.\-]+)', rest)
      n = int(trip.group(1)) if trip else None
      cond_name = cond.group(1) if cond else None
      if body:
        comps[current]['calls'].append((body.group(1), n, True, cond_name))
      if cond:
        comps[current]['calls'].append((cond_name, n, True, cond_name))
      continue
    for callee in _CALLS.findall(rest):
      comps[current]['calls'].append((callee, 1, False, None))
    for group in _BRANCHES.findall(rest):
      for callee in group.split(','):
        comps[current]['calls'].append((callee.strip().lstrip('%'), 1, False, None))
  return comps, entry


def collective_stats(hlo: str) -> dict[str, Any]:
  """Per kind: `count` and `bytes` per step (loop bodies times their trip count), `static` instruction count,
  `in_loop` instructions inside while bodies; plus `unknown_trip` (loops without a known trip count, counted
  once)."""
  comps, entry = parse_computations(hlo)
  for comp in comps.values():  # loops without known_trip_count: `i < N` with one s32 constant in the condition
    for i, (callee, n, is_loop, cond) in enumerate(comp['calls']):
      c = comps.get(cond or '', {})
      if is_loop and n is None and c.get('lt_compare') and len(set(c.get('constants', []))) == 1:
        comp['calls'][i] = (callee, c['constants'][0], is_loop, cond)
  out = {k: {'count': 0, 'bytes': 0, 'static': 0, 'in_loop': 0} for k in KINDS}
  out = {k: {'count': 0, 'bytes': 0, 'static': 0, 'in_loop': 0} for k in KINDS}
  unknown = [0]
  seen_static: set[str] = set()

  def visit(name: str, mult: int, in_loop: bool, stack: tuple[str, ...]):
    comp = comps.get(name)
    if comp is None or name in stack:
      return
    first = name not in seen_static
    seen_static.add(name)
    for kind, nbytes in comp['collectives']:
      out[kind]['count'] += mult
      out[kind]['bytes'] += mult * nbytes
      if first:
        out[kind]['static'] += 1
        out[kind]['in_loop'] += int(in_loop)
    for callee, n, is_loop, _ in comp['calls']:
      if n is None:
        unknown[0] += int(first)
        n = 1
      visit(callee, mult * n, in_loop or is_loop, stack + (name,))

  if entry is not None:
    visit(entry, 1, False, ())
  out['unknown_trip'] = unknown[0]
  return out
