import { packFragment, type MediaFragment } from '../../../lib/media';
import { storeConformance } from '../../../lib/store/conformance';
import { MemoryFragmentStore, memoryStore } from '../../../lib/store/memory';
import type { EvictReason, FragmentStoreOptions } from '../../../lib/store/types';

storeConformance('MemoryFragmentStore', (o) => new MemoryFragmentStore(o));

const POINT = 'events/ch1.isml';

/** A fragment whose {@link MediaFragment.byteLength} is exactly `bytes`: no samples, `bytes` of data. */
function fragment(time: bigint, bytes = 100, duration = 10n): MediaFragment {
  return packFragment(
    { trackId: 1, sequenceNumber: 1, sampleDescriptionIndex: undefined, samples: [], extra: [], data: [Buffer.alloc(bytes)], dataSize: bytes },
    { time, duration, presentationTime: time, decodeTime: time, decodeTimeSent: false, storedAt: 0 },
  );
}

function store(options: Omit<FragmentStoreOptions, 'point'>): MemoryFragmentStore {
  return new MemoryFragmentStore({ point: POINT, ...options });
}

/** The times of `track` the store holds among `candidates`. */
function held(s: MemoryFragmentStore, track: string, candidates: Iterable<bigint>): bigint[] {
  return [...candidates].filter((t) => s.get(track, t) !== undefined);
}

function range(from: bigint, to: bigint, step = 1n): bigint[] {
  const out: bigint[] = [];
  for (let t = from; t < to; t += step) out.push(t);
  return out;
}

describe('MemoryFragmentStore', () => {
  it.each([0, -1, Infinity, -Infinity, NaN])('rejects maxBytes %p', (maxBytes) => {
    expect(() => store({ maxBytes })).toThrow(RangeError);
    expect(() => memoryStore({ point: POINT, maxBytes })).toThrow(/maxBytes/);
  });

  it('accepts any positive finite budget', () => {
    expect(() => store({ maxBytes: 1 })).not.toThrow();
    expect(() => store({ maxBytes: Number.MAX_SAFE_INTEGER })).not.toThrow();
  });

  it('answers synchronously', () => {
    const s = store({ maxBytes: 1000 });
    expect(s.put('a', fragment(1n))).toBe(true);
    expect(s.get('a', 1n)).toBeDefined();
    expect(s.trim('a', 0n)).toBeUndefined();
    expect(s.clear()).toBeUndefined();
  });

  it('returns the stored object itself, not a copy', () => {
    const s = store({ maxBytes: 1000 });
    const f = fragment(1n);
    s.put('a', f);
    expect(s.get('a', 1n)).toBe(f);
  });

  it('counts the byteLength of a fragment: sample table, passthrough boxes and data', () => {
    const s = store({ maxBytes: 1 << 20 });
    const f = packFragment(
      {
        trackId: 1,
        sequenceNumber: 1,
        sampleDescriptionIndex: undefined,
        samples: [{ duration: 1, size: 10, flags: 0, compositionOffset: 0 }],
        extra: [Buffer.alloc(24)],
        data: [Buffer.alloc(10)],
        dataSize: 10,
      },
      { time: 0n, duration: 1n, presentationTime: 0n, decodeTime: 0n, decodeTimeSent: false, storedAt: 0 },
    );
    s.put('a', f);
    expect(s.bytes).toBe(16 + 24 + 10);
    expect(s.bytes).toBe(f.byteLength);
  });

  it('drops a fragment larger than the whole budget right away and reports it', () => {
    const evicted: Array<[bigint, EvictReason]> = [];
    const s = store({ maxBytes: 50, onEvict: (_t, f, r) => evicted.push([f.time, r]) });
    s.put('a', fragment(1n, 100));
    expect(s.bytes).toBe(0);
    expect(s.get('a', 1n)).toBeUndefined();
    expect(evicted).toEqual([[1n, 'bytes']]);
  });

  it('does not count a trimmed fragment against the byte budget twice', () => {
    const evicted: Array<[string, bigint, EvictReason]> = [];
    const s = store({ maxBytes: 250, onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
    s.put('a', fragment(0n));
    s.put('b', fragment(0n));
    s.trim('a', 10n);
    s.put('a', fragment(10n));
    s.put('a', fragment(20n));
    // 'a'@0 already left by the window: the byte budget evicts the next oldest, 'b'@0.
    expect(evicted).toEqual([
      ['a', 0n, 'window'],
      ['b', 0n, 'bytes'],
    ]);
    expect(s.bytes).toBe(200);
  });

  it('keeps exact bigint keys above 2^53 apart', () => {
    const s = store({ maxBytes: 1000 });
    s.put('a', fragment(17_640_000_000_000_001n));
    s.put('a', fragment(17_640_000_000_000_002n));
    expect(held(s, 'a', range(17_640_000_000_000_000n, 17_640_000_000_000_004n))).toEqual([
      17_640_000_000_000_001n,
      17_640_000_000_000_002n,
    ]);
    expect(s.get('a', 17_640_000_000_000_002n)?.time).toBe(17_640_000_000_000_002n);
  });

  it('keeps working after long runs of trims (internal compaction)', () => {
    const s = store({ maxBytes: 1 << 20 });
    for (let i = 0n; i < 1000n; i++) {
      s.put('a', fragment(i * 10n, 10));
      s.trim('a', i * 10n - 50n);
    }
    expect(held(s, 'a', range(0n, 10_000n, 10n))).toEqual([9940n, 9950n, 9960n, 9970n, 9980n, 9990n]);
    expect(s.put('a', fragment(9990n, 10))).toBe(false);
    expect(s.put('a', fragment(10_000n, 10))).toBe(true);
    expect(s.bytes).toBe(70);
  });

  it('keeps working after long runs of byte-budget evictions across tracks', () => {
    const s = store({ maxBytes: 1000 });
    for (let i = 0n; i < 3000n; i++) s.put(i % 3n ? 'a' : 'b', fragment(i, 100));
    expect(s.bytes).toBe(1000);
    expect([...held(s, 'a', range(2990n, 3000n)), ...held(s, 'b', range(2990n, 3000n))].sort()).toEqual(range(2990n, 3000n));
  });

  it('accepts new fragments after a track was trimmed empty', () => {
    const s = store({ maxBytes: 1000 });
    s.put('a', fragment(100n));
    s.trim('a', 1000n);
    expect(s.get('a', 100n)).toBeUndefined();
    expect(s.bytes).toBe(0);
    expect(s.put('a', fragment(200n))).toBe(true);
    expect(held(s, 'a', [100n, 200n])).toEqual([200n]);
  });
});
