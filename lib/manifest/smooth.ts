/**
 * The default manifest module: the Smooth Streaming client manifest (MS-SSTR 2.2.2, protocol doc §3).
 */
import type { ManifestFormatter, ManifestSnapshot, StreamSnapshot } from './types';
import type { TrackInfo } from '../model';
import { attrs } from './xml';

/** Options of {@link SmoothManifestFormatter}. */
export interface SmoothManifestOptions {
  /**
   * `2` writes `r` repeat runs (`MinorVersion="2"`); `0` writes one `c` per fragment. Default 0: with
   * runs in a live manifest GStreamer's mssdemux (1.22) fetches fragments twice (see the class).
   */
  minorVersion?: 0 | 2;
}

/**
 * Writes `SmoothStreamingMedia`. Decisions: `IsLive="TRUE"` in upper case (VLC compares exactly);
 * `LookAheadFragmentCount` only — the IIS/Azure/ffmpeg spelling that GStreamer reads — not the spec's
 * `LookaheadCount`; `t` on the first `c` and after every gap, `d` on every `c`; the `Url` template
 * uses `{bitrate}` and `{start time}`, the only spellings dash.js understands, and
 * `{CustomAttributes}` only when a QualityLevel has custom attributes.
 *
 * `MinorVersion` defaults to 0 (one `c` per fragment, as IIS 3.0 wrote live manifests): GStreamer's
 * mssdemux (1.22) merges the tfrf lookahead of each fragment into its list by comparing with the last
 * `c`'s *start* time and rewrites that `c`'s time from tfxd, so behind an `r` run it downloads every
 * second fragment of a constant-GOP stream twice. `minorVersion: 2` still writes runs for other clients.
 */
export class SmoothManifestFormatter implements ManifestFormatter {
  readonly contentType = 'application/vnd.ms-sstr+xml; charset=utf-8';
  readonly #minor: 0 | 2;

  constructor(options: SmoothManifestOptions = {}) {
    this.#minor = options.minorVersion ?? 0;
  }

  render(s: ManifestSnapshot): string {
    let out = '<?xml version="1.0" encoding="utf-8"?>\n';
    out += `<SmoothStreamingMedia${attrs([
      ['MajorVersion', 2],
      ['MinorVersion', this.#minor],
      ['TimeScale', s.timeScale],
      ['Duration', s.duration],
      ['IsLive', s.isLive ? 'TRUE' : undefined],
      ['LookAheadFragmentCount', s.isLive ? s.lookahead : undefined],
      ['DVRWindowLength', s.isLive ? s.dvrWindowLength : undefined],
    ])}>\n`;
    for (const stream of s.streams) out += this.#stream(stream);
    return out + '</SmoothStreamingMedia>\n';
  }

  #stream(s: StreamSnapshot): string {
    const video = s.type === 'video';
    const max = (f: (q: TrackInfo) => number | undefined): number | undefined =>
      video ? Math.max(0, ...s.qualityLevels.map((q) => f(q) ?? 0)) || undefined : undefined;
    const custom = s.qualityLevels.some((q) => q.customAttributes.length > 0);
    const url = `QualityLevels({bitrate}${custom ? ',{CustomAttributes}' : ''})/Fragments(${s.name}={start time})`;
    let out = `  <StreamIndex${attrs([
      ['Type', s.type],
      ['Name', s.name],
      ['Subtype', s.subtype],
      ['Language', s.language],
      ['Chunks', s.fragments.length],
      ['QualityLevels', s.qualityLevels.length],
      ['TimeScale', s.timescale],
      ['ParentStreamIndex', s.parent],
      ['ManifestOutput', s.manifestOutput ? 'TRUE' : undefined],
      ['MaxWidth', max((q) => q.maxWidth)],
      ['MaxHeight', max((q) => q.maxHeight)],
      ['DisplayWidth', max((q) => q.displayWidth)],
      ['DisplayHeight', max((q) => q.displayHeight)],
      ['Url', url],
    ])}>\n`;
    s.qualityLevels.forEach((q, index) => {
      const level = attrs([
        ['Index', index],
        ['Bitrate', q.bitrate],
        ['FourCC', q.fourCC],
        ['CodecPrivateData', q.codecPrivateData],
        ['MaxWidth', video ? q.maxWidth : undefined],
        ['MaxHeight', video ? q.maxHeight : undefined],
        ['NALUnitLengthField', video ? q.nalUnitLengthField : undefined],
        ['SamplingRate', q.samplingRate],
        ['Channels', q.channels],
        ['BitsPerSample', q.bitsPerSample],
        ['PacketSize', q.packetSize],
        ['AudioTag', q.audioTag],
      ]);
      if (q.customAttributes.length === 0) {
        out += `    <QualityLevel${level}/>\n`;
      } else {
        const list = q.customAttributes.map(([n, v]) => `<Attribute${attrs([['Name', n], ['Value', v]])}/>`).join('');
        out += `    <QualityLevel${level}><CustomAttributes>${list}</CustomAttributes></QualityLevel>\n`;
      }
    });
    out += this.#timeline(s);
    return out + '  </StreamIndex>\n';
  }

  #timeline(s: StreamSnapshot): string {
    // The hot part of every rebuild (one c per fragment in the window): lines joined once (a deep `+=`
    // rope made the later UTF-8 encoding slower than the rendering), no attrs() arrays, and the text of
    // `d` reused while the duration repeats. Output is byte-identical.
    const lines: string[] = [];
    const f = s.fragments;
    let expected: bigint | undefined; // implicit start of the next c
    let lastDuration: bigint | undefined;
    let d = '';
    for (let i = 0; i < f.length; ) {
      const { time, duration, payload } = f[i]!;
      let run = 1;
      if (this.#minor === 2 && !s.manifestOutput) {
        while (i + run < f.length) {
          const next = f[i + run]!;
          const prev = f[i + run - 1]!;
          if (next.duration !== duration || next.time !== prev.time + prev.duration) break;
          run++;
        }
      }
      if (duration !== lastDuration) {
        lastDuration = duration;
        d = ` d="${duration}"`;
      }
      const c = `    <c${time === expected ? '' : ` t="${time}"`}${d}${run > 1 ? ` r="${run}"` : ''}`;
      // Base64 needs no escaping. The sample is the one of the first bitrate that had this start.
      lines.push(s.manifestOutput && payload ? `${c}><f i="0">${Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64')}</f></c>\n` : `${c}/>\n`);
      const last = f[i + run - 1]!;
      expected = last.time + last.duration;
      i += run;
    }
    return lines.join('');
  }
}
