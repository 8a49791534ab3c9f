import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { metaLength, packFragment, type MediaFragment } from '../../../lib/media';
import { storeConformance } from '../../../lib/store/conformance';
import { DiskFragmentStore, diskStore, type DiskStoreOptions } from '../../../lib/store/disk';
import type { EvictReason, FragmentStore, FragmentStoreOptions, StoredFragment } from '../../../lib/store/types';
import { smoothErrorOf } from '../../helpers/errors';

const root = mkdtempSync(join(tmpdir(), 'live-smooth-disk-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

storeConformance('DiskFragmentStore', diskStore({ folder: join(root, 'conformance') }));

const POINT = 'events/ch1.isml';
const VIDEO = 'video/video/800000';
const AUDIO = 'audio/audio/96000,Lang=en';
const STORE_FOLDER = /^[0-9a-f]{16}-[0-9a-f]{8}$/;

let folderCount = 0;
/** A fresh folder for one test. */
function freshFolder(): string {
  const dir = join(root, `t${folderCount++}`);
  mkdirSync(dir);
  return dir;
}

function fragment(time: bigint, bytes = 1000, duration = 10n): MediaFragment {
  return packFragment(
    {
      trackId: 1,
      sequenceNumber: Number(time % 1000n),
      sampleDescriptionIndex: undefined,
      samples: [{ duration: 10, size: bytes, flags: 0, compositionOffset: 0 }],
      extra: [],
      data: [Buffer.alloc(bytes, Number(time % 251n))],
      dataSize: bytes,
    },
    { time, duration, presentationTime: time, decodeTime: time, decodeTimeSent: true, storedAt: 1 },
  );
}

/** Bytes the disk store counts for a fragment: its serialised description and its data. */
const recordBytes = (f: MediaFragment): number => metaLength(f) + f.dataSize;

async function readData(data: StoredFragment['data']): Promise<Buffer> {
  if (Buffer.isBuffer(data)) return data;
  const chunks: Buffer[] = [];
  for await (const chunk of data as Readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function readBytes(store: FragmentStore, track: string, time: bigint): Promise<Buffer | undefined> {
  const f = await store.get(track, time);
  return f && readData(f.data);
}

/** The per-store folders in `folder`. */
function storeFolders(folder: string): string[] {
  return readdirSync(folder).filter((n) => STORE_FOLDER.test(n));
}

/** The one per-store folder in `folder`. */
function storeFolder(folder: string): string {
  const names = storeFolders(folder);
  expect(names).toHaveLength(1);
  return join(folder, names[0]!);
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting until ${what}`);
}

function make(
  disk: Partial<DiskStoreOptions> & { folder: string },
  options: Partial<FragmentStoreOptions> = {},
): DiskFragmentStore {
  return diskStore(disk)({ point: POINT, maxBytes: 1 << 30, ...options }) as DiskFragmentStore;
}

function expectInvalid(fn: () => unknown, option: string): void {
  const caught = smoothErrorOf(fn);
  expect(caught.code).toBe('ERR_INVALID_OPTION');
  expect(caught.message).toContain(`options.${option}`);
}

const unhandled: unknown[] = [];
const onUnhandled = (err: unknown): void => void unhandled.push(err);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));
afterEach(() => expect(unhandled).toEqual([]));

describe('DiskFragmentStore', () => {
  it('names its folder and files with numbers only, never the point or a track key', async () => {
    const folder = freshFolder();
    const store = make({ folder });
    expect(readdirSync(folder)).toEqual([]); // made on the first write
    for (let i = 0n; i < 3n; i++) {
      await store.put(VIDEO, fragment(i * 10n));
      await store.put(AUDIO, fragment(i * 10n));
    }
    const name = storeFolders(folder)[0]!;
    expect(readdirSync(folder)).toEqual([name]);
    expect(name.slice(0, 16)).toBe(createHash('sha256').update(POINT).digest('hex').slice(0, 16));
    const dir = join(folder, name);
    expect(readFileSync(join(dir, 'owner'), 'utf8').trim()).toBe(String(process.pid));
    const files = readdirSync(dir).filter((n) => n !== 'owner');
    expect(files.sort()).toEqual(['0-0.frag', '1-0.frag']);
    // One record per fragment, appended: description then sample bytes.
    expect(statSync(join(dir, '0-0.frag')).size).toBe(3 * recordBytes(fragment(0n)));
    expect(store.bytes).toBe(6 * recordBytes(fragment(0n)));
    await store.clear();
  });

  it('keeps the sample bytes on disk, not in memory', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const settle = async (): Promise<number> => {
      for (let i = 0; i < 2; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    };
    const store = make({ folder: freshFolder(), segmentBytes: 32 << 20 });
    const before = await settle();
    const mib = 1 << 20;
    let written = 0;
    const puts: Array<boolean | Promise<boolean>> = [];
    for (let i = 0n; i < 200n; i++) {
      const f = fragment(i, mib);
      written += f.dataSize;
      // Several in flight at once, as from ingest; waiting now and then keeps them under maxPendingBytes.
      puts.push(store.put(i % 2n ? VIDEO : AUDIO, f));
      if (i % 8n === 7n) await puts[puts.length - 1];
    }
    expect(await Promise.all(puts)).toEqual(puts.map(() => true));
    const after = await settle();
    expect(written).toBe(200 * mib);
    expect(store.bytes).toBeGreaterThan(200 * mib);
    expect(after - before).toBeLessThan(20 * mib);
    // Still all there, from disk.
    expect((await readBytes(store, AUDIO, 0n))?.equals(fragment(0n, mib).data)).toBe(true);
    expect((await readBytes(store, VIDEO, 199n))?.equals(fragment(199n, mib).data)).toBe(true);
    await store.clear();
  });

  it('starts a new file at segmentBytes and deletes an old file once all its fragments are trimmed', async () => {
    const folder = freshFolder();
    const record = recordBytes(fragment(0n));
    const store = make({ folder, segmentBytes: 3 * record });
    for (let i = 0n; i < 8n; i++) expect(await store.put(VIDEO, fragment(i * 10n))).toBe(true);
    const dir = storeFolder(folder);
    const files = (): string[] => readdirSync(dir).filter((n) => n !== 'owner').sort();
    expect(files()).toEqual(['0-0.frag', '0-1.frag', '0-2.frag']);
    expect(statSync(join(dir, '0-0.frag')).size).toBe(3 * record);
    expect(statSync(join(dir, '0-2.frag')).size).toBe(2 * record);

    // A rotated file is still read: fragments 0..2 are in 0-0.frag.
    expect((await readBytes(store, VIDEO, 10n))?.equals(fragment(10n).data)).toBe(true);
    await store.trim(VIDEO, 20n); // 0 and 10 go; 20 keeps 0-0.frag
    await new Promise((r) => setTimeout(r, 50));
    expect(files()).toEqual(['0-0.frag', '0-1.frag', '0-2.frag']);
    await store.trim(VIDEO, 30n);
    await eventually(() => !files().includes('0-0.frag'), '0-0.frag is deleted');
    expect(files()).toEqual(['0-1.frag', '0-2.frag']);
    expect((await readBytes(store, VIDEO, 30n))?.equals(fragment(30n).data)).toBe(true);

    // The file being appended to stays while it is current, even with nothing left in it.
    await store.trim(VIDEO, 80n);
    await eventually(() => !files().includes('0-1.frag'), '0-1.frag is deleted');
    await new Promise((r) => setTimeout(r, 50));
    expect(files()).toEqual(['0-2.frag']);
    expect(store.bytes).toBe(0);
    // ...and goes when the next record rotates it.
    expect(await store.put(VIDEO, fragment(80n, 3 * 1000))).toBe(true);
    await eventually(() => !files().includes('0-2.frag'), '0-2.frag is deleted');
    expect(files()).toEqual(['0-3.frag']);
    await store.clear();
  });

  it('refuses puts beyond maxPendingBytes instead of queueing them', async () => {
    const evicted: Array<[bigint, EvictReason]> = [];
    const record = recordBytes(fragment(0n));
    const store = make({ folder: freshFolder(), maxPendingBytes: record + 1 }, { onEvict: (_t, f, r) => evicted.push([f.time, r]) });
    const first = store.put(VIDEO, fragment(0n));
    const second = store.put(VIDEO, fragment(10n)); // the queue holds one record, not more than the limit
    const third = store.put(VIDEO, fragment(20n));
    const other = store.put(AUDIO, fragment(20n));
    expect(first).toBeInstanceOf(Promise);
    expect(second).toBeInstanceOf(Promise);
    expect(third).toBe(false);
    expect(other).toBe(false);
    expect(await store.get(VIDEO, 20n)).toBeUndefined();
    expect(store.bytes).toBe(2 * record);
    expect(await first).toBe(true);
    expect(await second).toBe(true);
    expect(await store.put(VIDEO, fragment(20n))).toBe(true);
    expect(evicted).toEqual([]);
    await store.clear();
  });

  it('reports a failed write with onEvict(error), resolves false and keeps working', async () => {
    const folder = freshFolder();
    const evicted: Array<[string, bigint, EvictReason]> = [];
    // One record per file, so each put opens a file.
    const store = make({ folder, segmentBytes: 1 }, { onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
    expect(await store.put(VIDEO, fragment(0n))).toBe(true);
    const dir = storeFolder(folder);
    mkdirSync(join(dir, '0-1.frag')); // the next file cannot be opened for appending
    const failing = store.put(VIDEO, fragment(10n));
    expect(failing).toBeInstanceOf(Promise);
    expect(await failing).toBe(false);
    expect(evicted).toEqual([[VIDEO, 10n, 'error']]);
    expect(await store.get(VIDEO, 10n)).toBeUndefined();
    expect(store.bytes).toBe(recordBytes(fragment(0n)));

    // The failed time can come again, and the track goes on in a new file.
    expect(await store.put(VIDEO, fragment(10n))).toBe(true);
    expect(await store.put(VIDEO, fragment(20n))).toBe(true);
    expect((await readBytes(store, VIDEO, 10n))?.equals(fragment(10n).data)).toBe(true);
    expect((await readBytes(store, VIDEO, 0n))?.equals(fragment(0n).data)).toBe(true);
    expect(evicted).toHaveLength(1);
    await store.clear();
    expect(readdirSync(folder)).toEqual([]);
  });

  it('makes a new folder when its folder is deleted under it, dropping what went with it', async () => {
    const folder = freshFolder();
    const evicted: Array<[string, bigint, EvictReason]> = [];
    const store = make({ folder }, { onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
    expect(await store.put(VIDEO, fragment(0n))).toBe(true);
    expect(await store.put(AUDIO, fragment(0n))).toBe(true);
    const first = storeFolder(folder);
    rmSync(first, { recursive: true });
    // The store finds out when it reads (its open files still take appends).
    expect(await store.get(VIDEO, 0n)).toBeUndefined();
    expect(evicted).toEqual([[VIDEO, 0n, 'error']]);
    expect(store.bytes).toBe(recordBytes(fragment(0n)));
    expect(await store.put(VIDEO, fragment(10n))).toBe(true);
    expect(await store.put(AUDIO, fragment(10n))).toBe(true);
    const second = storeFolder(folder);
    expect(second).not.toBe(first);
    expect(readFileSync(join(second, 'owner'), 'utf8').trim()).toBe(String(process.pid));
    expect((await readBytes(store, VIDEO, 10n))?.equals(fragment(10n).data)).toBe(true);
    expect((await readBytes(store, AUDIO, 10n))?.equals(fragment(10n).data)).toBe(true);
    await store.clear();
  });

  it('clear() deletes its folder, also with writes queued, and the store is usable afterwards', async () => {
    const folder = freshFolder();
    const other = make({ folder }, { point: 'events/other.isml' });
    expect(await other.put(VIDEO, fragment(0n))).toBe(true);
    const otherFolder = storeFolder(folder);

    const evicted: Array<[bigint, EvictReason]> = [];
    const store = make({ folder }, { onEvict: (_t, f, r) => evicted.push([f.time, r]) });
    expect(await store.put(VIDEO, fragment(0n))).toBe(true);
    const puts = [10n, 20n, 30n].map((t) => store.put(VIDEO, fragment(t)));
    const mine = storeFolders(folder).filter((n) => join(folder, n) !== otherFolder);
    expect(mine).toHaveLength(1);
    await store.clear();
    expect(evicted).toEqual([0n, 10n, 20n, 30n].map((t) => [t, 'clear']));
    expect(await Promise.all(puts)).toEqual([true, true, true]);
    expect(existsSync(join(folder, mine[0]!))).toBe(false);
    expect(existsSync(otherFolder)).toBe(true);
    expect(store.bytes).toBe(0);

    expect(await store.put(VIDEO, fragment(0n))).toBe(true);
    expect((await readBytes(store, VIDEO, 0n))?.equals(fragment(0n).data)).toBe(true);
    expect(storeFolders(folder)).toHaveLength(2);
    // A clear() right after a put, before the folder even exists.
    void store.put(VIDEO, fragment(10n));
    await store.clear();
    await other.clear();
    expect(readdirSync(folder)).toEqual([]);
  });

  it('evicts the oldest fragments across tracks at its own maxBytes, which overrides the point budget', async () => {
    const record = recordBytes(fragment(0n));
    const evicted: Array<[string, bigint, EvictReason]> = [];
    const store = make({ folder: freshFolder(), maxBytes: 2 * record }, { maxBytes: 1 << 30, onEvict: (t, f, r) => evicted.push([t, f.time, r]) });
    expect(await store.put(VIDEO, fragment(0n))).toBe(true);
    expect(await store.put(AUDIO, fragment(0n))).toBe(true);
    expect(await store.put(VIDEO, fragment(10n))).toBe(true);
    expect(evicted).toEqual([[VIDEO, 0n, 'bytes']]);
    expect(store.bytes).toBe(2 * record);
    await store.clear();
  });

  it('removes the folders of dead processes at setup and leaves everything else alone', () => {
    const folder = freshFolder();
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const dead = Number(child.stdout);
    expect(dead).toBeGreaterThan(0);
    const storeDir = (name: string, owner?: string): string => {
      const dir = join(folder, name);
      mkdirSync(dir);
      if (owner !== undefined) writeFileSync(join(dir, 'owner'), owner);
      writeFileSync(join(dir, '0-0.frag'), 'x');
      return name;
    };
    const removed = [
      storeDir('0123456789abcdef-00000001', `${dead}\n`),
      storeDir('0123456789abcdef-00000002'), // no owner
      storeDir('0123456789abcdef-00000003', 'not a pid'),
      storeDir('0123456789abcdef-00000004', '0'),
      storeDir('fedcba9876543210-0000000a.tmp', `${dead}\n`), // a crash while it was being made
    ];
    const kept = [
      storeDir('0123456789abcdef-00000005', `${process.pid}\n`),
      storeDir('0123456789abcdef-00000006', '1'), // init: alive, maybe not ours to signal
      storeDir('0123456789abcdef-00000007.tmp'), // maybe being made by another process right now
      storeDir('0123456789ABCDEF-00000008', `${dead}\n`), // not the pattern: upper case
      storeDir('0123456789abcdef-000000089', `${dead}\n`),
      storeDir('x0123456789abcdef-00000008', `${dead}\n`),
      storeDir('recordings', `${dead}\n`),
    ];
    writeFileSync(join(folder, '0123456789abcdef-0000000b'), `${dead}\n`); // a file, not a folder
    kept.push('0123456789abcdef-0000000b');

    diskStore({ folder });
    expect(readdirSync(folder).sort()).toEqual(kept.sort());
    for (const name of removed) expect(existsSync(join(folder, name))).toBe(false);
    expect(readFileSync(join(folder, 'recordings', '0-0.frag'), 'utf8')).toBe('x');
  });

  it('creates a missing folder at setup', () => {
    const folder = join(freshFolder(), 'a', 'b');
    diskStore({ folder });
    expect(statSync(folder).isDirectory()).toBe(true);
  });

  it('validates its options eagerly, naming the option', () => {
    const folder = freshFolder();
    expectInvalid(() => diskStore(undefined as unknown as DiskStoreOptions), 'folder');
    expectInvalid(() => diskStore({} as DiskStoreOptions), 'folder');
    expectInvalid(() => diskStore({ folder: '' }), 'folder');
    expectInvalid(() => diskStore({ folder: 42 } as unknown as DiskStoreOptions), 'folder');
    const file = join(folder, 'file');
    writeFileSync(file, '');
    expectInvalid(() => diskStore({ folder: file }), 'folder');
    expectInvalid(() => diskStore({ folder: join(file, 'below') }), 'folder');
    for (const bad of [0, -1, NaN, Infinity, '1', null]) {
      expectInvalid(() => diskStore({ folder, maxBytes: bad as number }), 'maxBytes');
      expectInvalid(() => diskStore({ folder, maxPendingBytes: bad as number }), 'maxPendingBytes');
      expectInvalid(() => diskStore({ folder, segmentBytes: bad as number }), 'segmentBytes');
    }
    // Without its own budget, the store takes the point's, which must then be valid.
    const factory = diskStore({ folder });
    expectInvalid(() => factory({ point: POINT, maxBytes: 0 }), 'maxBytes');
    expect(() => diskStore({ folder, maxBytes: 1 })({ point: POINT, maxBytes: 0 })).not.toThrow();
    expectInvalid(() => new DiskFragmentStore({ point: POINT, maxBytes: 1 }, { folder, segmentBytes: -5 }), 'segmentBytes');
  });
});
