/**
 * The default ingest module: an incremental parser for a Smooth Streaming live ingest body
 * (`ftyp`, Live Server Manifest box, `moov`, then `moof`+`mdat` pairs, optionally ended by `mfra`).
 * Each track's header carries an init segment built from the ingest `moov`.
 *
 * With `cmaf`, the same parser reads a CMAF track as DASH-IF live media ingest (Interface 1) sends it
 * in one long POST: `ftyp` and a one-track `moov` without a Live Server Manifest box, then CMAF
 * fragments timed by `tfdt` (optionally after `styp`, `prft` or `emsg` boxes), ended by an `mfra` or by
 * the fragment after an `styp` with the `lmsg` brand. The track is described from the `moov` (its
 * bitrate from `btrt` or `esds`) and named after the stream (see {@link cmafTrackName}). Video, audio and
 * TTML text (`stpp`): a text track's documents are retimed from the track's timeline, as CMAF has them,
 * to their own sample's start, as Smooth has them and a point keeps them.
 */
import { SmoothError } from '../errors';
import {
  Moov,
  UUID_LIVE_SERVER_MANIFEST,
  UUID_STREAM_MANIFEST,
  hasBrand,
  liveServerManifestText,
  parseMoov,
} from '../mp4/boxes';
import { initSegment } from '../mp4/init';
import { Box, BoxReader, printable } from '../mp4/reader';
import { retimeSamples } from '../mp4/ttml';
import { trackKey } from '../model';
import { ParsedFragment, parseMovieFragment } from './fragment';
import { SkippedTrack, describeTracks } from './header';
import type { IngestEvent, IngestParser, IngestParserFactory, IngestTrack } from './types';

type Phase = 'ftyp' | 'header' | 'fragments' | 'ended';

/** Stream names of CMAF ingest (`Streams(video-800k.cmfv)`): video, audio, text, metadata tracks. */
export const CMAF_STREAM = /^([A-Za-z][A-Za-z0-9_]{0,63})(?:-[A-Za-z0-9._~-]*)?\.(cmfv|cmfa|cmft|cmfm)$/i;

/**
 * The track name (the StreamIndex) of a CMAF stream: the stream name up to its first `-` and without
 * its extension, so that `video-800k.cmfv` and `video-400k.cmfv` are two bitrates of `video`.
 * `undefined` when the name is not a CMAF stream name.
 */
export function cmafTrackName(streamId: string): string | undefined {
  return CMAF_STREAM.exec(streamId)?.[1];
}

/**
 * The Live Server Manifest a CMAF track's `moov` would have come with: its id, name and bitrate (`declared`,
 * e.g. an MPD's `@bandwidth`, else the sample entry's).
 */
function cmafManifest(moov: Moov, name: string, declared: number | undefined): string {
  if (moov.tracks.length !== 1) {
    throw new SmoothError('ERR_BAD_HEADER', `a CMAF ingest stream carries one track; this moov has ${moov.tracks.length}`);
  }
  const t = moov.tracks[0]!;
  const text = t.handler === 'subt' || t.handler === 'text';
  const type = t.handler === 'vide' ? 'video' : t.handler === 'soun' ? 'audio' : text ? 'textstream' : undefined;
  if (!type) throw new SmoothError('ERR_UNKNOWN_CODEC', `CMAF track of handler '${printable(t.handler)}' is not supported yet (video, audio and TTML text are)`);
  if (text && t.entry?.format !== 'stpp') {
    throw new SmoothError('ERR_UNKNOWN_CODEC', `CMAF text track of sample entry '${printable(t.entry?.format ?? 'none')}': only TTML (stpp) can be described in a Smooth manifest`);
  }
  // A subtitle track rarely declares a bitrate; its few bytes a second make 0 a fair one.
  const bitrate = declared ?? t.entry?.avgBitrate ?? (text ? 0 : undefined);
  if (bitrate === undefined) throw new SmoothError('ERR_BAD_HEADER', 'CMAF track without a bitrate: its sample entry needs a btrt box (or an esds average bitrate)');
  const textParams = text ? `<param name="FourCC" value="TTML"/><param name="Subtype" value="${/^cap/i.test(name) ? 'CAPT' : 'SUBT'}"/>` : '';
  return (
    `<smil xmlns="http://www.w3.org/2001/SMIL20/Language"><body><switch><${type} systemBitrate="${bitrate}">` +
    `<param name="trackID" value="${t.trackId}"/><param name="trackName" value="${name}"/>${textParams}</${type}></switch></body></smil>`
  );
}

/**
 * Largest Live Server Manifest box accepted, header included: real ones are a few KB (ffmpeg's for
 * three tracks: 2.2 KB), and the XML parser's time and memory grow with the text.
 */
export const MAX_LSM_BOX_SIZE = 1 << 20;

function lsmTooLarge(size: number): SmoothError {
  return new SmoothError('ERR_BAD_HEADER', `Live Server Manifest box of ${size} bytes exceeds ${MAX_LSM_BOX_SIZE}`);
}

/** Default {@link IngestParser} for MS-SSTR live ingest (protocol doc §2). */
export class SmoothIngestParser implements IngestParser {
  readonly #reader: BoxReader;
  #phase: Phase = 'ftyp';
  #header: Buffer[] = [];
  #lsm: string | undefined;
  #tracks = new Map<number, IngestTrack>();
  /** A moof waiting for its mdat, with the bytes of any boxes skipped in between. */
  #moof: { box: Box; gap: number } | undefined;
  /** Tracks the header describes but the point does not take (sparse tracks, for now), by track id. */
  readonly #skipped = new Map<number, SkippedTrack>();
  /** CMAF ingest: the track name its Live Server Manifest would give. */
  readonly #cmaf: string | undefined;
  /** CMAF ingest: the bitrate declared beside the stream, preferred to the sample entry's. */
  readonly #bitrate: number | undefined;
  /** CMAF ingest: an `styp` said the next fragment is the last (`lmsg`). */
  #lastMessage = false;

  /**
   * @param options.cmaf - read a CMAF track named so (see {@link cmafTrackName}) instead of Smooth ingest
   * @param options.bitrate - with `cmaf`: the track's bitrate, instead of its sample entry's
   */
  constructor(options: { maxBoxSize: number; cmaf?: string; bitrate?: number }) {
    this.#cmaf = options.cmaf;
    this.#bitrate = options.bitrate;
    this.#reader = new BoxReader({
      maxBoxSize: options.maxBoxSize,
      // Refused from its header, before up to maxBoxSize of it is buffered.
      onHeader: (type, uuid, size) => {
        if (type === 'uuid' && uuid === UUID_LIVE_SERVER_MANIFEST && size > MAX_LSM_BOX_SIZE) throw lsmTooLarge(size);
      },
    });
  }

  /** Bytes held: the box arriving, a moof waiting for its mdat, the header boxes read so far. */
  get buffered(): number {
    let n = this.#reader.buffered + (this.#moof?.box.data.length ?? 0);
    for (const b of this.#header) n += b.length;
    return n;
  }

  push(chunk: Buffer): IngestEvent[] {
    const events = this.#handle(this.#reader.push(chunk));
    this.#reader.throwRefusal(); // after the boxes before the refused one: the same error for any split
    return events;
  }

  end(): IngestEvent[] {
    const events = this.#handle(this.#reader.end());
    if (this.#moof) throw new SmoothError('ERR_TRUNCATED', 'input ended after a moof without its mdat');
    return events;
  }

  #handle(boxes: Box[]): IngestEvent[] {
    const events: IngestEvent[] = [];
    for (const box of boxes) this.#box(box, events);
    return events;
  }

  /**
   * A CMAF TTML fragment with its documents timed as a point keeps them, from their own sample's start
   * (the Smooth convention): CMAF times them on the track's timeline (`mp4/ttml.ts`).
   */
  #sampleTimed(fragment: ParsedFragment): ParsedFragment {
    const info = this.#tracks.get(fragment.trackId)?.info;
    if (info?.type !== 'text' || info.fourCC !== 'TTML') return fragment;
    const data = fragment.data.length === 1 ? fragment.data[0]! : Buffer.concat(fragment.data, fragment.dataSize);
    const retimed = retimeSamples(fragment.samples, data, fragment.decodeTime ?? fragment.time, info.timescale, -1);
    return retimed ? { ...fragment, samples: retimed.samples, data: [retimed.data], dataSize: retimed.data.length } : fragment;
  }

  #box(box: Box, events: IngestEvent[]): void {
    const type = box.type;
    if (this.#phase === 'ended') {
      throw new SmoothError('ERR_BAD_FRAGMENT', `box '${printable(type)}' after the end-of-stream mfra`);
    }
    if (this.#phase === 'ftyp') {
      if (type !== 'ftyp') throw new SmoothError('ERR_BAD_HEADER', `stream must start with ftyp, got '${printable(type)}'`);
      this.#header.push(Buffer.from(box.data));
      this.#phase = 'header';
      return;
    }
    if (this.#phase === 'header') {
      if (type === 'uuid' && box.uuid === UUID_LIVE_SERVER_MANIFEST) {
        if (box.data.length > MAX_LSM_BOX_SIZE) throw lsmTooLarge(box.data.length); // a size-0 box
        this.#lsm = liveServerManifestText(box);
        this.#header.push(Buffer.from(box.data));
      } else if (type === 'uuid' && box.uuid === UUID_STREAM_MANIFEST) {
        // Deprecated start barrier (MS-SSTR 2.2.7.2); Azure ignores it and so do we.
      } else if (type === 'moov') {
        const moov = parseMoov(box);
        if (this.#lsm === undefined && this.#cmaf !== undefined) this.#lsm = cmafManifest(moov, this.#cmaf, this.#bitrate);
        if (this.#lsm === undefined) {
          throw new SmoothError('ERR_BAD_HEADER', 'moov arrived before the Live Server Manifest box');
        }
        this.#header.push(Buffer.from(box.data));
        const skipped: SkippedTrack[] = [];
        const tracks: IngestTrack[] = describeTracks(this.#lsm, moov, skipped).map((t) => ({
          ...t,
          key: trackKey(t.info),
          init: initSegment(box, t.trackId),
        }));
        for (const t of tracks) this.#tracks.set(t.trackId, t);
        for (const t of skipped) this.#skipped.set(t.trackId, t);
        this.#phase = 'fragments';
        events.push({ type: 'header', tracks, boxes: Buffer.concat(this.#header), skipped: skipped.map((t) => t.reason) });
        this.#header = [];
      } else if (type === 'moof' || type === 'mdat' || type === 'mfra') {
        throw new SmoothError('ERR_BAD_HEADER', `'${type}' before the stream header (Live Server Manifest box and moov)`);
      }
      return;
    }
    // fragments
    if (type === 'moof') {
      if (this.#moof) throw new SmoothError('ERR_BAD_FRAGMENT', 'moof followed by another moof instead of mdat');
      this.#moof = { box, gap: 0 };
    } else if (type === 'mdat') {
      const moof = this.#moof;
      if (!moof) throw new SmoothError('ERR_BAD_FRAGMENT', 'mdat without a preceding moof');
      this.#moof = undefined;
      const trexOf = (id: number) => (this.#tracks.has(id) ? this.#tracks.get(id)!.trex : this.#skipped.has(id) ? this.#skipped.get(id)!.trex : false);
      const gap = moof.box.data.length + moof.gap;
      for (const fragment of parseMovieFragment(moof.box, box, gap, trexOf)) {
        // Only a sparse event may leave its duration unknown (0).
        if (fragment.duration === 0n && this.#tracks.get(fragment.trackId)?.info.parent === undefined) {
          throw new SmoothError('ERR_BAD_FRAGMENT', `track ${fragment.trackId}: fragment duration is 0`);
        }
        // A skipped track's fragments are checked like any other, then dropped.
        if (!this.#skipped.has(fragment.trackId)) events.push({ type: 'fragment', fragment: this.#cmaf !== undefined ? this.#sampleTimed(fragment) : fragment });
      }
      if (this.#lastMessage) {
        this.#phase = 'ended';
        events.push({ type: 'end' });
      }
    } else if (type === 'styp' && this.#cmaf !== undefined) {
      // CMAF §7.3.1: a segment whose styp lists the `lmsg` brand is the track's last.
      if (hasBrand(box, 'lmsg')) this.#lastMessage = true;
    } else if (type === 'mfra') {
      if (this.#moof) throw new SmoothError('ERR_BAD_FRAGMENT', 'mfra after a moof without its mdat');
      this.#phase = 'ended';
      events.push({ type: 'end' });
    } else if (type === 'ftyp' || type === 'moov') {
      throw new SmoothError('ERR_BAD_HEADER', `a second '${type}' inside one ingest POST`);
    } else if (this.#moof) {
      this.#moof.gap += box.data.length; // free/skip between moof and mdat: offsets still count from moof
    }
  }
}

/** The default {@link IngestParserFactory}. */
export const smoothIngest: IngestParserFactory = (options) => new SmoothIngestParser(options);

/**
 * An {@link IngestParserFactory} for the CMAF track of stream `streamId` (`video-800k.cmfv`).
 * @param options.bitrate - the track's bitrate as declared elsewhere (an MPD's `@bandwidth`), preferred
 *   to the one its sample entry gives
 */
export function cmafIngest(streamId: string, options: { bitrate?: number } = {}): IngestParserFactory {
  const name = cmafTrackName(streamId);
  if (name === undefined) throw new SmoothError('ERR_BAD_URL', `${streamId} is not a CMAF stream name (<name>[-<anything>].cmfv|cmfa|cmft|cmfm)`);
  return (o) => new SmoothIngestParser({ ...o, cmaf: name, bitrate: options.bitrate });
}
