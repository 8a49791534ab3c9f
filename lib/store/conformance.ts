/**
 * The conformance suite every {@link FragmentStore} must pass. It registers tests with the global
 * `describe`/`it` of the running test framework (Jest, Mocha, Vitest with globals) and asserts with
 * `node:assert`, so a store written elsewhere can run it unchanged:
 *
 * ```ts
 * import { storeConformance } from 'live-smooth/store-conformance';
 * storeConformance('MyStore', (options) => new MyStore(options));
 * ```
 *
 * Every store method may answer with a value or a Promise, so the suite awaits every call, and reads
 * `data` whether it is a Buffer or a stream. Byte budgets are expressed in what the store under test
 * counts for one fragment (measured first), since each store counts its own overhead; the suite only
 * assumes that fragments of the same shape cost the same. Every store a test creates is cleared when
 * the test ends, so a store holding files or connections releases them.
 */
import assert from 'node:assert/strict';
import { packFragment, type MediaFragment, type Sample } from '../media';
import type { FragmentTime } from '../model';
import type { EvictReason, FragmentStore, FragmentStoreFactory, FragmentStoreOptions, StoredFragment } from './types';

// Declared here rather than taken from @types/jest, so the suite compiles for any framework's globals.
declare const describe: (name: string, body: () => void) => void;
declare const it: (name: string, body: () => void | Promise<void>) => void;

const POINT = 'events/ch1.isml';
const VIDEO = 'video/video/800000';
const AUDIO = 'audio/audio/96000';
/** Above 2^53: a time that a conversion to `number` anywhere would corrupt. */
const BIG = 17_640_000_000_000_001n;

/** Options of the fragments the suite builds; all fragments built with the same options cost the same. */
interface Shape {
  bytes?: number;
  duration?: bigint;
}

/** A one-sample fragment whose bytes depend on its time, so a mix-up between fragments shows. */
function fragment(time: bigint, { bytes = 100, duration = 20_000_000n }: Shape = {}): MediaFragment {
  const fill = Number(((time % 251n) + 251n) % 251n);
  return packFragment(
    {
      trackId: 1,
      sequenceNumber: 1,
      sampleDescriptionIndex: undefined,
      samples: [{ duration: 1000, size: bytes, flags: 0x02000000, compositionOffset: 0 }],
      extra: [],
      data: [Buffer.alloc(bytes, fill)],
      dataSize: bytes,
    },
    { time, duration, presentationTime: time, decodeTime: time, decodeTimeSent: true, storedAt: 1_700_000_000_000 },
  );
}

/** Reads a fragment's sample bytes, whichever form the store returned them in. */
async function readData(data: StoredFragment['data']): Promise<Buffer> {
  if (Buffer.isBuffer(data)) return data;
  const chunks: Buffer[] = [];
  for await (const chunk of data) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** `get`, with the sample bytes read (a stream is always consumed, so no test leaves one open). */
async function read(
  store: FragmentStore,
  track: string,
  time: bigint,
): Promise<{ fragment: StoredFragment; bytes: Buffer } | undefined> {
  const fragment = await store.get(track, time);
  if (fragment === undefined) return undefined;
  return { fragment, bytes: await readData(fragment.data) };
}

/** Asserts that `track` holds exactly the fragments of `expected` among `candidates`, with their bytes. */
async function assertHeld(
  store: FragmentStore,
  track: string,
  candidates: readonly bigint[],
  expected: readonly bigint[],
): Promise<void> {
  const held: bigint[] = [];
  for (const time of candidates) {
    const got = await read(store, track, time);
    if (!got) continue;
    held.push(time);
    assert.equal(got.fragment.time, time);
    assert.ok(got.bytes.equals(fragment(time, { bytes: got.bytes.length }).data), `bytes of ${track}@${time}`);
  }
  assert.deepEqual(held, [...expected], `fragments held by ${track}`);
}

type Evicted = Array<[string, bigint, EvictReason]>;

/** Asserts that a store returned every field of `expected`'s description and its exact sample bytes. */
function assertSameFragment(actual: StoredFragment, bytes: Buffer, expected: MediaFragment): void {
  const fields = [
    'time',
    'duration',
    'presentationTime',
    'decodeTime',
    'decodeTimeSent',
    'sync',
    'trackId',
    'sequenceNumber',
    'sampleDescriptionIndex',
    'dataSize',
    'storedAt',
  ] as const;
  for (const k of fields) assert.strictEqual(actual[k], expected[k], `${k} round-trips`);
  assert.equal(actual.samples.count, expected.samples.count, 'sample count round-trips');
  for (let i = 0; i < expected.samples.count; i++) {
    assert.deepEqual(
      [actual.samples.duration(i), actual.samples.size(i), actual.samples.flags(i), actual.samples.compositionOffset(i)],
      [expected.samples.duration(i), expected.samples.size(i), expected.samples.flags(i), expected.samples.compositionOffset(i)],
      `sample ${i} round-trips`,
    );
  }
  assert.equal(actual.samples.hasCompositionOffsets, expected.samples.hasCompositionOffsets);
  assert.equal(actual.samples.negativeCompositionOffsets, expected.samples.negativeCompositionOffsets);
  assert.equal(actual.samples.totalDuration, expected.samples.totalDuration);
  assert.equal(actual.extra.length, expected.extra.length, 'passthrough box count round-trips');
  expected.extra.forEach((box, i) => assert.ok(Buffer.from(actual.extra[i]!).equals(box), `passthrough box ${i} round-trips`));
  assert.ok(bytes.equals(expected.data), 'sample bytes round-trip');
}

/**
 * Registers the conformance tests for a store.
 * @param name - label of the suite
 * @param create - the store factory under test; it is called once or more per test, with the point
 *   `events/ch1.isml`
 */
export function storeConformance(name: string, create: FragmentStoreFactory): void {
  /** Runs a test body with a store factory whose stores are all cleared afterwards, pass or fail. */
  const withStores =
    (body: (make: (options: Omit<FragmentStoreOptions, 'point'>) => FragmentStore) => Promise<void>) =>
    async (): Promise<void> => {
      const made: FragmentStore[] = [];
      try {
        await body((options) => {
          const store = create({ point: POINT, ...options });
          made.push(store);
          return store;
        });
      } finally {
        for (const store of made) await store.clear();
      }
    };

  /** What the store counts for one fragment of `shape` (its `bytes` after one put). */
  async function unitBytes(make: (options: Omit<FragmentStoreOptions, 'point'>) => FragmentStore, shape: Shape = {}) {
    const probe = make({ maxBytes: 1 << 30 });
    assert.equal(await probe.put(VIDEO, fragment(0n, shape)), true);
    const unit = probe.bytes;
    assert.ok(Number.isFinite(unit) && unit > 0, `bytes counts a stored fragment (got ${unit})`);
    await probe.clear();
    assert.equal(probe.bytes, 0, 'bytes is 0 after clear()');
    return unit;
  }

  describe(`FragmentStore conformance: ${name}`, () => {
    it(
      'returns the fragment for an exact time and nothing for other times or tracks',
      withStores(async (make) => {
        const store = make({ maxBytes: 1 << 20 });
        const f = fragment(BIG);
        assert.equal(await store.put(VIDEO, f), true);
        const got = await read(store, VIDEO, BIG);
        assert.ok(got, 'the fragment is found at its exact time');
        assert.equal(got.fragment.time, BIG);
        assert.ok(got.bytes.equals(f.data));
        assert.equal(await read(store, VIDEO, BIG - 1n), undefined);
        assert.equal(await read(store, VIDEO, BIG + 1n), undefined);
        assert.equal(await read(store, AUDIO, BIG), undefined);
      }),
    );

    it(
      'memoryBytes, when the store has it, is part of bytes and leaves on its own once puts settle',
      withStores(async (make) => {
        const store = make({ maxBytes: 1 << 20 });
        const puts: Array<unknown> = [];
        for (let i = 0n; i < 4n; i++) puts.push(store.put(VIDEO, fragment(i * 20_000_000n, { bytes: 1000 })));
        if (store.memoryBytes === undefined) return;
        assert.ok(store.memoryBytes >= 0 && store.memoryBytes <= store.bytes, `memoryBytes ${store.memoryBytes} within bytes ${store.bytes}`);
        await Promise.all(puts);
        assert.equal(store.memoryBytes, 0, 'nothing left in memory once every put settled');
      }),
    );

    it(
      'keeps tracks apart',
      withStores(async (make) => {
        const store = make({ maxBytes: 1 << 20 });
        const a: bigint[] = [];
        const b: bigint[] = [];
        for (let i = 0n; i < 5n; i++) {
          a.push(i * 20_000_000n);
          b.push(i * 20_053_333n);
          assert.equal(await store.put('a', fragment(i * 20_000_000n, { bytes: 100 })), true);
          assert.equal(await store.put('b', fragment(i * 20_053_333n, { bytes: 90, duration: 20_053_333n })), true);
        }
        await assertHeld(store, 'a', [...a, ...b.slice(1)], a);
        await assertHeld(store, 'b', [...b, ...a.slice(1)], b);
        assert.equal((await read(store, 'b', b[4]!))?.fragment.duration, 20_053_333n);
        assert.equal((await read(store, 'a', a[4]!))?.fragment.duration, 20_000_000n);
        assert.equal((await read(store, 'a', a[4]!))?.bytes.length, 100);
        assert.equal((await read(store, 'b', b[4]!))?.bytes.length, 90);
        assert.equal(await read(store, 'missing', 0n), undefined);
      }),
    );

    it(
      'keeps the first copy: a repeated or older time is refused',
      withStores(async (make) => {
        const store = make({ maxBytes: 1 << 20 });
        const first = fragment(40n);
        assert.equal(await store.put('a', first), true);
        const bytes = store.bytes;
        const copy = packFragment(
          { trackId: 2, sequenceNumber: 9, sampleDescriptionIndex: undefined, samples: [], extra: [], data: [], dataSize: 0 },
          { time: 40n, duration: 5n, presentationTime: 40n, decodeTime: 40n, decodeTimeSent: false, storedAt: 0 },
        );
        assert.equal(await store.put('a', copy), false);
        assert.equal(await store.put('a', fragment(40n, { bytes: 50 })), false);
        assert.equal(await store.put('a', fragment(20n)), false);
        const got = await read(store, 'a', 40n);
        assert.ok(got);
        assertSameFragment(got.fragment, got.bytes, first);
        assert.equal(await read(store, 'a', 20n), undefined);
        assert.equal(store.bytes, bytes, 'a refused fragment does not count');
      }),
    );

    it(
      'trims by end time and reports window evictions oldest first',
      withStores(async (make) => {
        const evicted: Evicted = [];
        const store = make({ maxBytes: 1 << 20, onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
        for (let i = 0n; i < 4n; i++) assert.equal(await store.put('a', fragment(i * 10n, { duration: 10n })), true);
        assert.equal(await store.put('b', fragment(0n, { duration: 10n })), true);
        const before = store.bytes;
        await store.trim('a', 20n); // fragments [0,10) and [10,20) end at or before 20
        assert.deepEqual(evicted, [
          ['a', 0n, 'window'],
          ['a', 10n, 'window'],
        ]);
        await assertHeld(store, 'a', [0n, 10n, 20n, 30n], [20n, 30n]);
        await assertHeld(store, 'b', [0n], [0n]);
        assert.equal(store.bytes, (before * 3) / 5, 'bytes no longer counts the trimmed fragments');
        await store.trim('a', 29n); // [20,30) ends at 30: kept
        await store.trim('missing', 1000n);
        assert.equal(evicted.length, 2);
        await assertHeld(store, 'a', [20n, 30n], [20n, 30n]);
      }),
    );

    it(
      'never holds more than maxBytes: the oldest fragments go first, across tracks',
      withStores(async (make) => {
        const unit = await unitBytes(make);
        const maxBytes = Math.floor(unit * 3.5);
        const evicted: Evicted = [];
        const store = make({ maxBytes, onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
        for (const [track, time] of [
          ['a', 0n],
          ['b', 0n],
          ['a', 10n],
          ['b', 10n],
        ] as const) {
          assert.equal(await store.put(track, fragment(time)), true);
          assert.ok(store.bytes <= maxBytes, `${store.bytes} bytes held, budget ${maxBytes}`);
        }
        assert.deepEqual(evicted, [['a', 0n, 'bytes']]);
        await assertHeld(store, 'a', [0n, 10n], [10n]);
        await assertHeld(store, 'b', [0n, 10n], [0n, 10n]);
        assert.equal(await store.put('a', fragment(20n)), true);
        assert.deepEqual(evicted, [
          ['a', 0n, 'bytes'],
          ['b', 0n, 'bytes'],
        ]);
        await assertHeld(store, 'b', [0n, 10n], [10n]);
      }),
    );

    it(
      'stays bounded over a long run',
      withStores(async (make) => {
        const unit = await unitBytes(make);
        const maxBytes = unit * 100;
        const held = new Set<string>();
        const key = (track: string, time: bigint): string => `${track}@${time}`;
        const store = make({ maxBytes, onEvict: (t, f) => held.delete(key(t, f.time)) });
        const n = 20_000n;
        for (let i = 0n; i < n; i++) {
          const track = i % 2n ? 'a' : 'b';
          assert.equal(await store.put(track, fragment(i, { duration: 1n })), true);
          held.add(key(track, i));
          if (i % 100n === 0n) await store.trim('a', i - 50n);
          if (i % 1000n === 0n) assert.ok(store.bytes <= maxBytes);
        }
        assert.ok(store.bytes <= maxBytes, `${store.bytes} bytes held, budget ${maxBytes}`);
        assert.ok(held.size <= 100, `${held.size} fragments held`);
        // What onEvict did not report is still there, and nothing it reported is.
        for (let i = n - 250n; i < n; i++) {
          const track = i % 2n ? 'a' : 'b';
          assert.equal((await read(store, track, i)) !== undefined, held.has(key(track, i)), key(track, i));
        }
      }),
    );

    it(
      'clear() empties every track, reports each fragment and leaves the store usable',
      withStores(async (make) => {
        const evicted: Evicted = [];
        const store = make({ maxBytes: 1 << 20, onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
        assert.equal(await store.put('a', fragment(0n)), true);
        assert.equal(await store.put('a', fragment(20_000_000n)), true);
        assert.equal(await store.put('b', fragment(0n)), true);
        await store.clear();
        assert.deepEqual(
          evicted.map((e) => e.join(' ')).sort(),
          ['a 0 clear', 'a 20000000 clear', 'b 0 clear'],
        );
        assert.equal(store.bytes, 0);
        await assertHeld(store, 'a', [0n, 20_000_000n], []);
        await assertHeld(store, 'b', [0n], []);
        // A new session starts again from any time, older ones included.
        assert.equal(await store.put('a', fragment(0n)), true);
        await assertHeld(store, 'a', [0n], [0n]);
        assert.ok(store.bytes > 0);
      }),
    );

    it(
      "round-trips a fragment's description and its sample bytes",
      withStores(async (make) => {
        const store = make({ maxBytes: 1 << 20 });
        const samples: Sample[] = [
          { duration: 1001, size: 3000, flags: 0x02000000, compositionOffset: 2002 },
          { duration: 1001, size: 17, flags: 0x01010000, compositionOffset: -1001 },
          { duration: 0xffffffff, size: 0, flags: 0xffffffff, compositionOffset: -0x80000000 },
          { duration: 0, size: 983, flags: 0x00010000, compositionOffset: 0x7fffffff },
        ];
        const dataSize = samples.reduce((n, s) => n + s.size, 0);
        const data = Buffer.alloc(dataSize);
        for (let i = 0; i < dataSize; i++) data[i] = (i * 7 + 3) & 0xff;
        const sdtp = Buffer.from('00000010736474700000000020101010', 'hex');
        const uuid = Buffer.concat([Buffer.from('0000001d75756964', 'hex'), Buffer.alloc(16, 0xa5), Buffer.from([1, 2, 3, 4, 5])]);
        const rich = packFragment(
          {
            trackId: 0xfffffffe,
            sequenceNumber: 0xffffffff,
            sampleDescriptionIndex: 7,
            samples,
            extra: [sdtp, Buffer.alloc(0), uuid],
            // In pieces, as ingest hands them over.
            data: [data.subarray(0, 5), data.subarray(5, 3001), data.subarray(3001)],
            dataSize,
          },
          {
            time: 0n,
            duration: 18_000n,
            presentationTime: -2_000n,
            decodeTime: -4_004n,
            decodeTimeSent: true,
            storedAt: 1_712_345_678_901.5,
          },
        );
        const plain = packFragment(
          {
            trackId: 2,
            sequenceNumber: 0,
            sampleDescriptionIndex: undefined,
            samples: [{ duration: 1024, size: 6, flags: 0x00010000, compositionOffset: 0 }],
            extra: [],
            data: [Buffer.from('abcdef')],
            dataSize: 6,
          },
          {
            time: BIG,
            duration: 1024n,
            presentationTime: BIG + 5n,
            decodeTime: -(2n ** 62n),
            decodeTimeSent: false,
            storedAt: 0,
          },
        );
        const empty = packFragment(
          { trackId: 3, sequenceNumber: 4, sampleDescriptionIndex: 0, samples: [], extra: [], data: [], dataSize: 0 },
          { time: 5n, duration: 0n, presentationTime: 5n, decodeTime: 5n, decodeTimeSent: false, storedAt: 1 },
        );
        assert.equal(rich.sync, true);
        assert.equal(plain.sync, false);
        assert.equal(await store.put('rich', rich), true);
        assert.equal(await store.put('plain', plain), true);
        assert.equal(await store.put('empty', empty), true);
        for (const [track, f] of [
          ['rich', rich],
          ['plain', plain],
          ['empty', empty],
        ] as const) {
          const got = await read(store, track, f.time);
          assert.ok(got, `${track} is found`);
          assertSameFragment(got.fragment, got.bytes, f);
        }
      }),
    );

    it(
      'serves a fragment from the moment put() returns, before a returned Promise settles',
      withStores(async (make) => {
        const store = make({ maxBytes: 1 << 20 });
        const fragments = [0n, 10n, 20n, 30n].map((t) => fragment(BIG + t, { bytes: 5000, duration: 10n }));
        // Queue them all before awaiting anything, so a store with a write queue has them all pending.
        const puts = fragments.map((f) => store.put(VIDEO, f));
        for (const f of fragments) {
          const got = await read(store, VIDEO, f.time);
          assert.ok(got, `${f.time} is readable while its put is pending`);
          assertSameFragment(got.fragment, got.bytes, f);
        }
        assert.deepEqual(await Promise.all(puts), [true, true, true, true]);
        for (const f of fragments) {
          const got = await read(store, VIDEO, f.time);
          assert.ok(got, `${f.time} is readable once stored`);
          assertSameFragment(got.fragment, got.bytes, f);
        }
      }),
    );

    it(
      'keeps times above 2^53 exact',
      withStores(async (make) => {
        const evicted: FragmentTime[] = [];
        const store = make({ maxBytes: 1 << 20, onEvict: (_t, f) => evicted.push({ time: f.time, duration: f.duration }) });
        const times = [BIG, BIG + 1n, BIG + 2n, 2n ** 63n - 3n];
        for (const t of times) assert.equal(await store.put('a', fragment(t, { duration: 1n })), true);
        await assertHeld(store, 'a', [BIG - 1n, ...times, 2n ** 63n - 2n], times);
        assert.equal(await store.put('a', fragment(BIG + 1n, { duration: 1n })), false);
        await store.trim('a', BIG + 2n); // BIG and BIG + 1 end at or before it
        assert.deepEqual(evicted, [
          { time: BIG, duration: 1n },
          { time: BIG + 1n, duration: 1n },
        ]);
        await assertHeld(store, 'a', times, times.slice(2));
      }),
    );
  });
}
