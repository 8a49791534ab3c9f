import { storeConformance } from '../../../lib/store/conformance';
import { MemoryFragmentStore, memoryStore } from '../../../lib/store/memory';
import type { EvictReason, StoredFragment } from '../../../lib/store/types';

storeConformance('MemoryFragmentStore', memoryStore);

function fragment(time: bigint, bytes = 100, duration = 10n): StoredFragment {
  return { time, duration, data: Buffer.alloc(bytes), moofSize: 8, storedAt: 0 };
}

describe('MemoryFragmentStore', () => {
  it.each([0, -1, Infinity, -Infinity, NaN])('rejects maxBytes %p', (maxBytes) => {
    expect(() => new MemoryFragmentStore({ maxBytes })).toThrow(RangeError);
    expect(() => memoryStore({ maxBytes })).toThrow(/maxBytes/);
  });

  it('accepts any positive finite budget', () => {
    expect(() => new MemoryFragmentStore({ maxBytes: 1 })).not.toThrow();
    expect(() => new MemoryFragmentStore({ maxBytes: Number.MAX_SAFE_INTEGER })).not.toThrow();
  });

  it('returns the stored object itself, not a copy', () => {
    const store = new MemoryFragmentStore({ maxBytes: 1000 });
    const f = fragment(1n);
    store.put('a', f);
    expect(store.get('a', 1n)).toBe(f);
  });

  it('drops a fragment larger than the whole budget right away and reports it', () => {
    const evicted: Array<[bigint, EvictReason]> = [];
    const store = new MemoryFragmentStore({ maxBytes: 50, onEvict: (_t, f, r) => evicted.push([f.time, r]) });
    store.put('a', fragment(1n, 100));
    expect(store.bytes).toBe(0);
    expect(store.get('a', 1n)).toBeUndefined();
    expect(evicted).toEqual([[1n, 'bytes']]);
  });

  it('does not count a trimmed fragment against the byte budget twice', () => {
    const evicted: Array<[string, bigint, EvictReason]> = [];
    const store = new MemoryFragmentStore({ maxBytes: 250, onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
    store.put('a', fragment(0n));
    store.put('b', fragment(0n));
    store.trim('a', 10n);
    store.put('a', fragment(10n));
    store.put('a', fragment(20n));
    // 'a'@0 already left by the window: the byte budget evicts the next oldest, 'b'@0.
    expect(evicted).toEqual([
      ['a', 0n, 'window'],
      ['b', 0n, 'bytes'],
    ]);
    expect(store.bytes).toBe(200);
  });

  it('keeps exact bigint keys above 2^53 apart', () => {
    const store = new MemoryFragmentStore({ maxBytes: 1000 });
    store.put('a', fragment(17_640_000_000_000_001n));
    store.put('a', fragment(17_640_000_000_000_002n));
    expect(store.timeline('a').map((f) => f.time)).toEqual([17_640_000_000_000_001n, 17_640_000_000_000_002n]);
    expect(store.get('a', 17_640_000_000_000_002n)?.time).toBe(17_640_000_000_000_002n);
  });

  it('keeps working after long runs of trims (internal compaction)', () => {
    const store = new MemoryFragmentStore({ maxBytes: 1 << 20 });
    for (let i = 0n; i < 1000n; i++) {
      store.put('a', fragment(i * 10n, 10));
      store.trim('a', i * 10n - 50n);
    }
    expect(store.timeline('a').map((f) => f.time)).toEqual([9940n, 9950n, 9960n, 9970n, 9980n, 9990n]);
    expect(store.newest('a')?.time).toBe(9990n);
    expect(store.get('a', 9940n)).toBeDefined();
    expect(store.get('a', 9930n)).toBeUndefined();
    expect(store.bytes).toBe(60);
  });

  it('accepts new fragments after a track was trimmed empty', () => {
    const store = new MemoryFragmentStore({ maxBytes: 1000 });
    store.put('a', fragment(100n));
    store.trim('a', 1000n);
    expect(store.newest('a')).toBeUndefined();
    expect(store.put('a', fragment(200n))).toBe(true);
    expect(store.timeline('a').map((f) => f.time)).toEqual([200n]);
  });
});
