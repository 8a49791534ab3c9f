/**
 * Sparse tracks in a segmented live archive: they follow the media. A caption before the first media
 * fragment opens no archive; a silent caption track does not hold a segment open once the media moved
 * past it; an event never opens a segment the media has not reached; every archived event is in the
 * presentation's `.ismc` with its parent.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ArchiveEvent, Archiver } from '../../../lib/archive';
import { resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { openSource } from '../../../lib/ismv/source';
import { SmoothManifestFormatter } from '../../../lib/manifest/smooth';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import { TrackSpec, cat, fragment, ftyp, lsmBox, lsmSmil, mfra, moov, payload } from '../../helpers/fmp4';
import { captionSpec, videoSpec } from '../../helpers/sparse';

const S = 10_000_000n;
const video = videoSpec();
const captions = captionSpec(1);
const header = (tracks: TrackSpec[]): Buffer => cat(ftyp(), lsmBox(lsmSmil(tracks)), moov(tracks));
const at = (trackId: number, n: number, seconds: bigint, body: Buffer): Buffer => fragment(n, [{ trackId, time: seconds * S, duration: S, samples: [body] }]);
const caption = (i: bigint): Buffer => Buffer.from(`<tt xmlns="http://www.w3.org/ns/ttml"><body><p>${i}</p></body></tt>`);

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'live-smooth-archive-sparse-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((ok) => setTimeout(ok, 5));
  if (!check()) throw new Error('condition not met');
}

describe('a segmented archive with a caption track', () => {
  it('starts with the media, is not held open by silent captions, and puts an early event in the media\'s segment', async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const settings = resolveSettings([{ startOnFirstRequest: true, publishing: 'Fragments;Streams;Archives', archiveSegmentLength: 60 }]);
    const point = new PublishingPoint('ch1.isml', settings, resolveOptions({ stateFile: false, clock }));
    const events: ArchiveEvent[] = [];
    const archiver = new Archiver(
      { root, base: root, queueBytes: 1 << 24, syncInterval: 60_000, manifest: new SmoothManifestFormatter(), now: clock.now },
      (e) => events.push(e),
    );
    archiver.watch(point);
    const parser = (): SmoothIngestParser => new SmoothIngestParser({ maxBoxSize: 1 << 24 });
    const sparse = point.openIngest('sparse', '127.0.0.1', parser());
    sparse.write(header([captions]));
    // Before the media: nothing to belong to.
    sparse.write(at(1, 1, 0n, caption(0n)));
    expect(archiver.list('ch1.isml')).toEqual([]);

    const media = point.openIngest('media', '127.0.0.1', parser());
    media.write(header([video]));
    let n = 2;
    for (let s = 0n; s < 70n; s++) {
      now += 1000;
      media.write(at(1, Number(s) + 1, s, payload(100, Number(s) + 1)));
      // Captions for the first 20 s, then silence.
      if (s >= 1n && s < 20n) sparse.write(at(1, n++, s, caption(s)));
    }
    // The video moved on at 60 s: segment 0 is done though the caption track said nothing since.
    await until(() => events.some((e) => e.segment === 0 && e.state === 'finished'));
    expect(point.state).toBe('Started');
    // An event announced ahead of the media (125 s, in segment 2 by its time) waits in the media's segment.
    now += 60_000;
    sparse.write(at(1, n++, 125n, caption(125n)));
    media.write(at(1, 71, 70n, payload(100, 71)));
    media.write(mfra());
    await until(() => archiver.list('ch1.isml').filter((a) => a.state === 'finished').length === 2);
    await archiver.idle();

    const session = path.join(root, 'ch1', readdirSync(path.join(root, 'ch1'))[0]!);
    expect(readdirSync(session).sort()).toEqual(['0', '1']);
    const byName = async (segment: string): Promise<Map<string, bigint[]>> => {
      const source = await openSource([path.join(session, segment, 'ch1.ism')], { sparse: true });
      await source.close();
      return new Map(source.tracks.map((t) => [t.info.name, t.fragments.map((f) => f.time / S)]));
    };
    const zero = await byName('0');
    expect(zero.get('captions')).toEqual(Array.from({ length: 19 }, (_, i) => BigInt(i + 1)));
    expect(zero.get('video')).toHaveLength(60);
    const one = await byName('1');
    expect(one.get('captions')).toEqual([125n]);
    expect(one.get('video')).toEqual(Array.from({ length: 11 }, (_, i) => BigInt(60 + i)));
    const ismc = readFileSync(path.join(session, '0', 'ch1.ismc'), 'utf8');
    expect(ismc).toMatch(/Name="captions"[^>]* Chunks="19"[^>]* ParentStreamIndex="video"/);
    // Listed from the segment's start, after the media's.
    expect(ismc).toMatch(/Name="captions"[\s\S]*?<c t="10000000" d="10000000"\/>/);
    // Seconds of media; the caption's file does not make segment 1 any longer.
    expect(archiver.list('ch1.isml').map((a) => a.duration)).toEqual([60, 11]);
    await archiver.close();
  });
});
