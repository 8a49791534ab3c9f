/**
 * Entity tags come from content and stream times, never from the process: two origins fed the same
 * stream (redundant origins behind one edge) serve byte-identical manifests and fragments under the
 * same tags, whatever their clocks, while a fragment with other content at a reused time gets another.
 */
import { resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { packFragment } from '../../../lib/media';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import { fragmentTag, liveMaxAge } from '../../../lib/point/etag';
import type { PackagedFragment } from '../../../lib/point';
import { fixture } from '../../helpers/raw-ingest';

const F = fixture();

function fed(clockOffset: number): PublishingPoint {
  const clock = { now: () => Date.now() + clockOffset };
  const p = new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false, clock }));
  const session = p.openIngest('ch1', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  session.write(F.header);
  for (const f of F.fragments.slice(0, -1)) session.write(f);
  return p;
}

/** Every fragment the manifest lists, as `[name, bitrate, time]`. */
function listed(manifest: string): Array<[string, number, bigint]> {
  const out: Array<[string, number, bigint]> = [];
  for (const si of manifest.split('<StreamIndex').slice(1)) {
    const name = /Name="([^"]+)"/.exec(si)![1]!;
    const bitrates = [...si.matchAll(/Bitrate="(\d+)"/g)].map((m) => Number(m[1]));
    let t = 0n;
    for (const c of si.matchAll(/<c (?:t="(\d+)" )?d="(\d+)"/g)) {
      if (c[1] !== undefined) t = BigInt(c[1]);
      for (const b of bitrates) out.push([name, b, t]);
      t += BigInt(c[2]!);
    }
  }
  return out;
}

function bytesOf(p: PackagedFragment): Buffer {
  return Buffer.concat([p.head, ...(Array.isArray(p.data) ? p.data : [p.data])]);
}

describe('entity tags', () => {
  it('two points fed the same stream serve the same manifest and fragments under the same tags, whatever their clocks', () => {
    const a = fed(0);
    const b = fed(5 * 3600_000);
    const ma = a.manifest();
    const mb = b.manifest();
    expect(mb.body.equals(ma.body)).toBe(true);
    expect(mb.etag).toBe(ma.etag);
    const fragments = listed(ma.body.toString('utf8'));
    expect(fragments.length).toBeGreaterThan(4);
    for (const [name, bitrate, time] of fragments) {
      const fa = a.lookup(name, bitrate, [], time);
      const fb = b.lookup(name, bitrate, [], time);
      if (fa.status !== 'ok' || fb.status !== 'ok') throw new Error(`${name} ${bitrate} ${time} not found`);
      expect(fb.etag).toBe(fa.etag);
      expect(bytesOf(b.smoothFragment(fb) as PackagedFragment).equals(bytesOf(a.smoothFragment(fa) as PackagedFragment))).toBe(true);
    }
  });

  it('a manifest tag changes with its content', () => {
    const p = fed(0);
    const before = p.manifest().etag;
    const session = p.openIngest('ch1', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    session.write(F.header);
    session.write(F.fragments[F.fragments.length - 1]!);
    expect(p.manifest().etag).not.toBe(before);
  });

  it('a fragment with other samples at the same time has another tag', () => {
    const times = { time: 0n, duration: 20_000_000n, presentationTime: 0n, decodeTime: 0n, decodeTimeSent: true, storedAt: 0 };
    const fragment = (sizes: number[]) =>
      packFragment(
        {
          trackId: 1,
          sequenceNumber: 1,
          sampleDescriptionIndex: undefined,
          samples: sizes.map((size) => ({ duration: 1000, size, flags: 0, compositionOffset: 0 })),
          extra: [],
          data: [Buffer.alloc(sizes.reduce((x, y) => x + y, 0))],
          dataSize: sizes.reduce((x, y) => x + y, 0),
        },
        times,
      );
    expect(fragmentTag(fragment([100, 200, 300]))).toBe(fragmentTag(fragment([100, 200, 300])));
    expect(fragmentTag(fragment([100, 200, 300]))).not.toBe(fragmentTag(fragment([100, 300, 200])));
    expect(fragmentTag(fragment([100, 200, 300]))).not.toBe(fragmentTag(fragment([100, 200, 301])));
  });

  it('live responses are kept half a fragment in whole seconds, AAC fragments a few ms short of 2 s included', () => {
    expect([0.5, 1, 1.88, 1.984, 2, 2.0053, 3.968, 4, 6].map(liveMaxAge)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 3]);
  });
});
