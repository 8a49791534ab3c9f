/**
 * The conformance suite every {@link FragmentStore} must pass. It registers tests with the global
 * `describe`/`it` of the running test framework (Jest, Mocha, Vitest with globals) and asserts with
 * `node:assert`, so a store written elsewhere can run it unchanged:
 *
 * ```ts
 * import { storeConformance } from 'live-smooth';
 * storeConformance('MyStore', (options) => new MyStore(options));
 * ```
 */
import assert from 'node:assert/strict';
import type { EvictReason, FragmentStoreFactory, StoredFragment } from './types';

declare const describe: (name: string, body: () => void) => void;
declare const it: (name: string, body: () => void | Promise<void>) => void;

function fragment(time: bigint, bytes = 100, duration = 20_000_000n): StoredFragment {
  return { time, duration, data: Buffer.alloc(bytes, Number(time % 251n)), moofSize: 8, storedAt: 0 };
}

/**
 * Registers the conformance tests for a store.
 * @param name - label of the suite
 * @param create - the store factory under test
 */
export function storeConformance(name: string, create: FragmentStoreFactory): void {
  describe(`FragmentStore conformance: ${name}`, () => {
    it('returns the stored object for an exact time and nothing for other times', () => {
      const store = create({ maxBytes: 1 << 20 });
      const f = fragment(17_640_000_000_000_001n);
      assert.equal(store.put('video/video/800000', f), true);
      assert.equal(store.get('video/video/800000', 17_640_000_000_000_001n)?.data, f.data);
      assert.equal(store.get('video/video/800000', 17_640_000_000_000_000n), undefined);
      assert.equal(store.get('audio/audio/96000', 17_640_000_000_000_001n), undefined);
    });

    it('keeps tracks apart and lists each timeline oldest first', () => {
      const store = create({ maxBytes: 1 << 20 });
      for (let i = 0n; i < 5n; i++) {
        store.put('a', fragment(i * 20_000_000n));
        store.put('b', fragment(i * 20_053_333n, 100, 20_053_333n));
      }
      assert.deepEqual(
        store.timeline('a').map((f) => f.time),
        [0n, 20_000_000n, 40_000_000n, 60_000_000n, 80_000_000n],
      );
      assert.equal(store.timeline('b')[4]!.duration, 20_053_333n);
      assert.equal(store.newest('a')?.time, 80_000_000n);
      assert.deepEqual(store.timeline('missing'), []);
      assert.equal(store.newest('missing'), undefined);
    });

    it('keeps the first copy: a repeated or older time is ignored', () => {
      const store = create({ maxBytes: 1 << 20 });
      const first = fragment(40n);
      assert.equal(store.put('a', first), true);
      assert.equal(store.put('a', fragment(40n, 50)), false);
      assert.equal(store.put('a', fragment(20n)), false);
      assert.equal(store.get('a', 40n), first);
      assert.equal(store.bytes, 100);
    });

    it('trims by end time and reports window evictions', () => {
      const evicted: Array<[string, bigint, EvictReason]> = [];
      const store = create({ maxBytes: 1 << 20, onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
      for (let i = 0n; i < 4n; i++) store.put('a', fragment(i * 10n, 100, 10n));
      store.trim('a', 20n); // fragments [0,10) and [10,20) end at or before 20
      assert.deepEqual(store.timeline('a').map((f) => f.time), [20n, 30n]);
      assert.deepEqual(evicted, [
        ['a', 0n, 'window'],
        ['a', 10n, 'window'],
      ]);
      assert.equal(store.get('a', 0n), undefined);
      assert.equal(store.bytes, 200);
    });

    it('never holds more than maxBytes: the oldest fragments go first, across tracks', () => {
      const evicted: Array<[string, bigint, EvictReason]> = [];
      const store = create({ maxBytes: 350, onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
      store.put('a', fragment(0n));
      store.put('b', fragment(0n));
      store.put('a', fragment(10n));
      store.put('b', fragment(10n));
      assert.ok(store.bytes <= 350);
      assert.deepEqual(evicted, [['a', 0n, 'bytes']]);
      assert.deepEqual(store.timeline('a').map((f) => f.time), [10n]);
      assert.deepEqual(store.timeline('b').map((f) => f.time), [0n, 10n]);
    });

    it('stays bounded over a long run', () => {
      const store = create({ maxBytes: 10_000 });
      for (let i = 0n; i < 20_000n; i++) {
        store.put(i % 2n ? 'a' : 'b', fragment(i, 100));
        if (i % 100n === 0n) store.trim('a', i - 50n);
      }
      assert.ok(store.bytes <= 10_000);
      assert.ok(store.timeline('a').length + store.timeline('b').length <= 100);
    });

    it('clear() empties every track and reports each fragment', () => {
      let count = 0;
      const store = create({ maxBytes: 1 << 20, onEvict: (_t, _f, r) => (count += r === 'clear' ? 1 : 0) });
      store.put('a', fragment(0n));
      store.put('b', fragment(0n));
      store.clear();
      assert.equal(count, 2);
      assert.equal(store.bytes, 0);
      assert.deepEqual(store.timeline('a'), []);
      assert.equal(store.put('a', fragment(0n)), true);
    });

    it('timeline() returns a fresh array that later puts do not change', () => {
      const store = create({ maxBytes: 1 << 20 });
      store.put('a', fragment(0n));
      const before = store.timeline('a');
      store.put('a', fragment(10n));
      assert.equal(before.length, 1);
    });
  });
}
