/**
 * What a client gets for a stored fragment: the packaged header is built once per fragment and
 * variant and then reused, and the sample bytes sent after it are the stored ones themselves (a view,
 * never a copy per request or per format).
 */
import { resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import type { MediaFragment } from '../../../lib/media';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint, type PackagedFragment } from '../../../lib/point';
import { fixture } from '../../helpers/raw-ingest';

const F = fixture();

function fed(): { p: PublishingPoint; stored: Map<string, MediaFragment> } {
  const p = new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false }));
  const stored = new Map<string, MediaFragment>();
  p.on('fragment', (e) => stored.set(`${e.track}@${e.fragment.time}`, e.fragment));
  const session = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  session.write(F.all); // every fragment, then end of stream: all published
  return { p, stored };
}

/** The memory store answers at once: no Promise to wait for. */
function now(v: unknown): PackagedFragment {
  expect(v).toBeDefined();
  expect(typeof (v as { then?: unknown }).then).toBe('undefined');
  return v as PackagedFragment;
}

describe('delivery of a stored fragment', () => {
  const { p, stored } = fed();
  const found = p.lookup('video', 100000, [], 10_000_000n);
  if (found.status !== 'ok') throw new Error(found.status);

  it('builds the Smooth header once and reuses it for every request', () => {
    const a = now(p.smoothFragment(found));
    const b = now(p.smoothFragment(p.lookup('video', 100000, [], 10_000_000n) as typeof found));
    expect(b.head).toBe(a.head);
    expect(b.moofSize).toBe(a.moofSize);
  });

  it('sends the stored sample bytes themselves, for Smooth and for CMAF alike', () => {
    const f = stored.get('video/video/100000@10000000')!;
    const smooth = now(p.smoothFragment(found));
    const cmaf = now(p.cmafSegment(found));
    expect(smooth.data).toBe(f.data);
    expect(cmaf.data).toBe(f.data);
    expect(smooth.dataSize).toBe(f.dataSize);
    // One header per format, each kept: the CMAF one has no tfxd/tfrf, so it is the shorter.
    expect(cmaf.head).not.toBe(smooth.head);
    expect(cmaf.head.length).toBeLessThan(smooth.head.length);
    expect(now(p.cmafSegment(found)).head).toBe(cmaf.head);
  });

  it('builds a CMAF header per decode-time offset', () => {
    const plain = now(p.cmafSegment(found)).head;
    const shifted = now(p.cmafSegment(found, { decodeTimeOffset: 213_333n })).head;
    expect(shifted).not.toBe(plain);
    expect(shifted.length).toBe(plain.length);
  });
});
