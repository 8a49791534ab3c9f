/**
 * An archived presentation's manifests with sparse tracks: the `.ism` names them as `<textstream>`s
 * with every param that describes them; the `.ismc` lists them as text StreamIndexes with their parent,
 * their samples in `<f>` where `manifestOutput` asks; the media alone says where the presentation
 * starts, and an event before it is left out or listed from 0.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { writeManifests } from '../../../lib/archive/manifests';
import { parseLiveServerManifest } from '../../../lib/ingest/header';
import { SmoothManifestFormatter } from '../../../lib/manifest/smooth';
import { SCTE35_SCHEME, TrackInfo } from '../../../lib/model';

const S = 10_000_000n;
const info = (over: Partial<TrackInfo>): TrackInfo => ({
  type: 'video',
  name: 'video',
  bitrate: 800000,
  customAttributes: [],
  fourCC: 'H264',
  codecPrivateData: '',
  timescale: 10_000_000,
  subtype: '',
  language: undefined,
  ...over,
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-manifests-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writeManifests with sparse tracks', () => {
  it('names them in the .ism and lists them in the .ismc from the media\'s start', async () => {
    const splice = Buffer.from('fc302000000000000000fff00506fe000dbba0000a000800', 'hex');
    const ads = info({ type: 'text', name: 'ads', bitrate: 0, fourCC: 'DATA', subtype: 'DATA', parent: 'video', manifestOutput: true, scheme: SCTE35_SCHEME });
    const captions = info({ type: 'text', name: 'captions', bitrate: 1000, fourCC: 'TTML', subtype: 'CAPT', parent: 'video', manifestOutput: false, language: 'en' });
    await writeManifests(
      dir,
      'ch1',
      [
        { info: info({}), src: 'video_800000.ismv', fragments: [10n, 11n, 12n].map((s) => ({ time: s * S, duration: S })) },
        // Events that arrived ahead of the media: one ends before it starts, one runs across its start.
        { info: captions, src: 'captions_1000.ismv', fragments: [{ time: 8n * S, duration: S }, { time: 9n * S, duration: 2n * S }, { time: 12n * S, duration: S }] },
        { info: ads, src: 'ads_0.ismv', fragments: [{ time: 9n * S, duration: 0n, payload: splice }, { time: 115n * (S / 10n), duration: 0n, payload: splice }] },
      ],
      new SmoothManifestFormatter(),
    );
    const ism = readFileSync(path.join(dir, 'ch1.ism'), 'utf8');
    const metas = new Map<string, string>();
    const elements = parseLiveServerManifest(ism, metas);
    expect(metas.get('timeShift')).toBe(String(10n * S));
    const ad = elements.find((e) => e.src === 'ads_0.ismv')!;
    expect(ad.type).toBe('text');
    expect(Object.fromEntries(['parentTrackName', 'manifestOutput', 'Scheme', 'Subtype', 'FourCC'].map((k) => [k, ad.params.get(k)]))).toEqual({
      parentTrackName: 'video',
      manifestOutput: 'true',
      Scheme: SCTE35_SCHEME,
      Subtype: 'DATA',
      FourCC: 'DATA',
    });
    expect(elements.find((e) => e.src === 'captions_1000.ismv')).toMatchObject({ type: 'text', systemLanguage: 'en' });

    const ismc = readFileSync(path.join(dir, 'ch1.ismc'), 'utf8');
    expect(ismc).toContain('Duration="30000000"');
    expect(ismc).toMatch(/<StreamIndex Type="text" Name="captions" Subtype="CAPT" Language="en" Chunks="2" [^>]*ParentStreamIndex="video" Url=/);
    expect(ismc).toContain('<c t="0" d="10000000"/>\n    <c t="20000000" d="10000000"/>');
    expect(ismc).toMatch(/Name="ads"[^>]* Chunks="1" [^>]*ParentStreamIndex="video" ManifestOutput="TRUE"/);
    expect(ismc).toContain(`<c t="15000000" d="0"><f i="0">${splice.toString('base64')}</f></c>`);
  });
});
