/**
 * One archive file's writes: queued in order at their offsets, bounded by the shared queue, and a disk
 * that refuses them (a real `ENOSPC` from `/dev/full`) stops the file once, with its code, releasing
 * everything it had queued.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ArchiveFailure, TrackFile, WriteQueue } from '../../../lib/archive';
import { packFragment } from '../../../lib/media';
import { children } from '../../../lib/mp4/reader';

const fragment = (time: bigint, bytes: number): ReturnType<typeof packFragment> =>
  packFragment(
    { trackId: 1, sequenceNumber: 1, sampleDescriptionIndex: undefined, samples: [{ duration: 1000, size: bytes, flags: 0, compositionOffset: 0 }], extra: [], data: [Buffer.alloc(bytes, 7)], dataSize: bytes },
    { time, duration: 1000n, presentationTime: time, decodeTime: time, decodeTimeSent: false, storedAt: 0 },
  );

describe('TrackFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-file-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the header, each fragment as moof + mdat at its offset, and the mfra when finished', async () => {
    const queue = new WriteQueue(1 << 20);
    const file = path.join(dir, 'a.ismv');
    const f = new TrackFile(file, Buffer.from([0, 0, 0, 8, 0x66, 0x72, 0x65, 0x65]), { queue, syncInterval: 0, now: () => 0, onError: () => undefined });
    // More fragments than the index's first allocation (64): it grows and keeps every entry.
    const n = 200;
    for (let i = 0; i < n; i++) f.append(fragment(BigInt(i) * 1000n, 100 + i));
    await f.finish();
    expect(queue.pending).toBe(0);
    expect(f.failure).toBeUndefined();
    const bytes = readFileSync(file);
    const boxes = [...children(bytes)];
    expect(boxes.map((b) => b.type)).toEqual(['free', ...Array.from({ length: n }, () => ['moof', 'mdat']).flat(), 'mfra']);
    expect(bytes.length).toBe(f.size);
    // The tfra lists every fragment at its moof.
    const tfra = [...children(boxes[boxes.length - 1]!.data.subarray(8))][0]!.data;
    expect(tfra.readUInt32BE(20)).toBe(n);
    const moofs = boxes.filter((b) => b.type === 'moof').map((b) => b.offset);
    for (let i = 0; i < n; i++) {
      expect(tfra.readBigUInt64BE(24 + i * 19)).toBe(BigInt(i) * 1000n);
      expect(Number(tfra.readBigUInt64BE(24 + i * 19 + 8))).toBe(moofs[i]);
    }
    expect(f.fragments.list()).toHaveLength(n);
  });

  it('a full disk (ENOSPC) stops the file once with its code; its queued bytes are released', async () => {
    const queue = new WriteQueue(1 << 20);
    const failures: ArchiveFailure[] = [];
    const f = new TrackFile(path.join(dir, 'full.ismv'), Buffer.alloc(8), {
      queue,
      syncInterval: 60_000,
      now: () => 0,
      onError: (e) => failures.push(e),
      create: () => open('/dev/full', 'w'),
    });
    for (let i = 0; i < 5; i++) f.append(fragment(BigInt(i) * 1000n, 1000));
    await f.finish();
    expect(failures).toEqual([expect.objectContaining({ code: 'ENOSPC' })]);
    expect(f.failure?.code).toBe('ENOSPC');
    expect(queue.pending).toBe(0);
    // Appending after the failure does nothing.
    f.append(fragment(9000n, 10));
    expect(queue.pending).toBe(0);
  });

  it('a file that already exists is not overwritten: the archive fails with EEXIST', async () => {
    const failures: ArchiveFailure[] = [];
    const file = path.join(dir, 'a.ismv');
    const before = readFileSync(file);
    const f = new TrackFile(file, Buffer.alloc(8), { queue: new WriteQueue(1 << 20), syncInterval: 0, now: () => 0, onError: (e) => failures.push(e) });
    f.append(fragment(0n, 10));
    await f.finish();
    expect(failures.map((e) => e.code)).toEqual(['EEXIST']);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(existsSync(file)).toBe(true);
  });
});
