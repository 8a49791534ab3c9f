/**
 * Statistics of a publishing point for the management API: per-track counters and the incoming
 * bitrate measured from arrival times, per-stream connection state; and the responses the HTTP edge
 * counts on the point for the metrics.
 */
import type { SmoothErrorCode } from '../errors';
import type { TrackInfo } from '../model';

/** Statistics of one track (management API). */
export interface TrackStats {
  key: string;
  info: TrackInfo;
  /** Measured arrival rate of this track's sample bytes, bits per second, over the last fragments; 0 without an encoder. */
  incomingBitrate: number;
  /** Newest fragment received (held back or published). */
  lastFragmentTime: bigint | undefined;
  lastFragmentDuration: bigint | undefined;
  /** Wall-clock ms (the origin's clock) at which the newest fragment arrived; `undefined` before the first. */
  lastArrival: number | undefined;
  /** Fragments and sample bytes received, including those still held back for the lookahead. */
  fragments: number;
  bytes: number;
  requests: number;
  notFound: number;
  notYetAvailable: number;
}

/** Statistics of one ingest stream (management API). */
export interface StreamStats {
  id: string;
  state: 'connected' | 'disconnected' | 'ended';
  remoteAddress: string | undefined;
  connections: number;
}

/** Fragments remembered for the incoming bitrate. */
const ARRIVALS = 8;

/** Counters of one track. */
export class TrackCounters {
  fragments = 0;
  bytes = 0;
  requests = 0;
  notFound = 0;
  notYet = 0;
  /** Arrival times (ms) and sizes of the last fragments. */
  readonly #arrivals: Array<[number, number]> = [];

  /** Wall-clock ms at which the newest fragment arrived; 0 before the first. */
  get lastArrival(): number {
    return this.#arrivals[this.#arrivals.length - 1]?.[0] ?? 0;
  }

  /** A fragment of `bytes` sample bytes arrived at `now` (ms). */
  arrived(now: number, bytes: number): void {
    this.fragments++;
    this.bytes += bytes;
    this.#arrivals.push([now, bytes]);
    if (this.#arrivals.length > ARRIVALS) this.#arrivals.shift();
  }

  /**
   * Arrival rate of the sample bytes: the bytes that arrived after the first remembered fragment, over
   * the time since it arrived; with one fragment so far, its bytes over its media duration.
   * @param lastSeconds - media duration of the newest fragment, seconds
   */
  incomingBitrate(lastSeconds: number): number {
    const first = this.#arrivals[0];
    const last = this.#arrivals[this.#arrivals.length - 1];
    if (!first || !last) return 0;
    if (this.#arrivals.length === 1 || last[0] === first[0]) {
      return lastSeconds > 0 ? Math.round((first[1] * 8) / lastSeconds) : 0;
    }
    let bytes = 0;
    for (let i = 1; i < this.#arrivals.length; i++) bytes += this.#arrivals[i]![1];
    return Math.round((bytes * 8000) / (last[0] - first[0]));
  }
}

/** How the point handled encoders that went back in time, counted per point (management API). */
export interface EncoderCounts {
  /** Encoders whose times went back beyond the resend window, whatever `encoderRestart` did with them. */
  restarts: number;
  /** Fragments dropped because the track already had that time or a later one (resends, redundant encoders). */
  duplicatesDropped: number;
  /**
   * Encoders refused for their times: a restart with `encoderRestart=refuse`, a redundant encoder that
   * fell behind, a time jump far ahead of the track.
   */
  refused: number;
}

/** Failures outside the media path, counted per point (management API). */
export interface FailureCounts {
  /** Listeners of the point's or the origin's events that threw or rejected. */
  listener: number;
  /** Store calls that threw or rejected. */
  store: number;
}

/**
 * What the HTTP edge answered a request that reached a point: the Smooth manifest, a fragment by part
 * (`Fragments`, `FragmentInfo`, `RawFragments`), the DASH MPD, an HLS playlist (master or media), a
 * CMAF init or media segment (DASH and HLS), an encoder's POST, or anything else (preflights, the
 * time endpoint, methods not allowed, unknown resources, requests the point's state turns away).
 */
export type ResponseOutput =
  | 'manifest'
  | 'fragment'
  | 'fragment_info'
  | 'raw_fragment'
  | 'mpd'
  | 'm3u8'
  | 'cmaf_init'
  | 'cmaf_segment'
  | 'ingest'
  | 'other';

/** Every {@link ResponseOutput}, in the order the metrics list them. */
export const RESPONSE_OUTPUTS: readonly ResponseOutput[] = [
  'manifest',
  'fragment',
  'fragment_info',
  'raw_fragment',
  'mpd',
  'm3u8',
  'cmaf_init',
  'cmaf_segment',
  'ingest',
  'other',
];

/** Why the edge refused an encoder: the error's code, or `internal` for an unexpected failure. */
export type RefusalCode = SmoothErrorCode | 'internal';

/**
 * Responses of a point by output and status, and encoders refused by reason, counted by the HTTP edge
 * as it writes each status (the metrics read them at scrape time). Counting is on the delivery path:
 * one map update per response, with no allocation once a status has been seen. Both key sets are
 * closed (the statuses the edge writes, the error codes), so the maps stay small.
 */
export class ResponseCounts {
  readonly #statuses = Object.fromEntries(RESPONSE_OUTPUTS.map((o) => [o, new Map<number, number>()])) as Readonly<
    Record<ResponseOutput, Map<number, number>>
  >;
  readonly #refusals = new Map<RefusalCode, number>();

  /** One response of `output` went out with `status`. */
  count(output: ResponseOutput, status: number): void {
    const m = this.#statuses[output];
    m.set(status, (m.get(status) ?? 0) + 1);
  }

  /** An encoder was refused for `code`. */
  refused(code: RefusalCode): void {
    this.#refusals.set(code, (this.#refusals.get(code) ?? 0) + 1);
  }

  /** Responses so far, one entry per output and status seen, by output then status. */
  responses(): Array<{ output: ResponseOutput; status: number; count: number }> {
    return RESPONSE_OUTPUTS.flatMap((output) =>
      [...this.#statuses[output]].sort((a, b) => a[0] - b[0]).map(([status, count]) => ({ output, status, count })),
    );
  }

  /** Encoders refused so far, one entry per code seen. */
  refusals(): Array<{ code: RefusalCode; count: number }> {
    return [...this.#refusals].map(([code, count]) => ({ code, count }));
  }
}
