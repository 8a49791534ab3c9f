/**
 * Events of publishing points and the origin, and the emitter that delivers them: every listener is
 * called in its own `try`, so a listener that throws (or returns a Promise that rejects) is reported
 * and never reaches the socket or timer callback that caused the event.
 */
import { EventEmitter } from 'node:events';
import type { EncoderRestart } from '../definition';
import type { MediaFragment, TrackHeader } from '../media';
import { isThenable } from '../store/types';

/**
 * Publishing point states (protocol doc §5.3). Stopping and ShuttingDown are transient: the point passes
 * through them (and reports them) on its way to Stopped and Idle.
 */
export type PointState = 'Idle' | 'Starting' | 'Started' | 'Stopping' | 'Stopped' | 'ShuttingDown' | 'Error';

/**
 * Where a pulled point's media comes from (`sourceType=Pull`), as its puller last reported it:
 * - `waiting`: the point is not started, nothing is pulled;
 * - `connecting`: asking the upstream for its manifest, nothing pulled yet;
 * - `pulling`: fragments arrive from `upstream`;
 * - `failing`: the upstream does not answer as it should (`reason`, e.g. `upstream 503`), and the next
 *   one listed, if any, is being tried;
 * - `ended`: the upstream's presentation ended and the point was sent end of stream.
 */
export interface SourceStatus {
  state: 'waiting' | 'connecting' | 'pulling' | 'failing' | 'ended';
  /** The upstream publishing point in use (or last tried). */
  upstream: string;
  /** Why the state is not `pulling`, or what is left out (tracks that cannot be pulled). */
  reason: string | undefined;
  /** Wall-clock ms of the change. */
  since: number;
}

/** What went wrong outside the media path: a listener or the store failed. */
export type FailureSource = 'listener' | 'store';

/** Events of a publishing point (and, naming the point, of the origin). */
export interface PointEvents {
  /** The point changed state. */
  state: [{ point: string; state: PointState; reason?: string }];
  /** A track appeared in the point: its description and init segment. Comes before its first `fragment`. */
  trackHeader: [{ point: string; track: TrackHeader }];
  /** A fragment was stored: its track key and the format-neutral fragment, in ingest order per track. */
  fragment: [{ point: string; track: string; fragment: MediaFragment }];
  streamStarted: [{ point: string; streamId: string; remoteAddress: string | undefined; reconnect: boolean }];
  streamEnded: [{ point: string; streamId: string; reason: 'eos' | 'disconnected' | 'error' }];
  /** A fragment left the point (DVR window, byte budget, reset, failed store write). */
  fragmentTrimmed: [{ point: string; track: string; time: bigint; reason: string }];
  /**
   * The session's DASH/HLS timeline was anchored (its first fragment): output time 0 is
   * `availabilityStart` (wall-clock ms). The origin saves it with the point's state.
   */
  anchor: [{ point: string; availabilityStart: number }];
  inputRejected: [{ point: string; streamId: string; code: string; message: string }];
  /**
   * An encoder came back with times before the resend window of a track it feeds alone (it restarted),
   * and the point did `action` (its `encoderRestart` setting). `time` is the encoder's first fragment,
   * `newest` the track's newest fragment then; with `continue`, `shift` (in the track's timescale) is
   * added to the encoder's times from now on.
   */
  encoderRestart: [{ point: string; streamId: string; track: string; time: bigint; newest: bigint; action: EncoderRestart; shift?: bigint }];
  /**
   * A fragment was not stored because its track already has that time or a later one: `duplicate`
   * within the resend window (a reconnect's resend, a redundant encoder), `behind` before it (a
   * redundant encoder that fell behind; refused after a few).
   */
  fragmentDropped: [{ point: string; streamId: string; track: string; time: bigint; reason: 'duplicate' | 'behind' }];
  /**
   * A live archive presentation (a session, or one segment of it) began writing, was finished (its
   * `mfra` and manifests on disk) or failed (the point goes on serving). Emitted by the origin only.
   */
  archive: [ArchiveEvent];
  /** A pulled point's connection to its upstream changed (see {@link SourceStatus}). */
  source: [{ point: string } & SourceStatus];
  /** A listener or the store failed; ingest and delivery went on. Counted in the point's statistics. */
  failure: [{ point: string; source: FailureSource; event?: string; message: string; error: unknown }];
}

/** The `archive` event: a live archive presentation began, was finished, or failed. */
export interface ArchiveEvent {
  point: string;
  /** Absolute folder of the presentation. */
  folder: string;
  /** 0 for an unsegmented archive, else the segment number (from 0). */
  segment: number;
  state: 'writing' | 'finished' | 'failed';
  /** Why it failed: `ERR_ARCHIVE_BEHIND` (the write queue is full) or the file system's code (`ENOSPC`, …). */
  code?: string;
  message?: string;
}

/** Called with what a listener threw, and the arguments of the event it was given. */
export type ListenerFailure = (event: string, error: unknown, args: readonly unknown[]) => void;

/**
 * An `EventEmitter` whose `emit` isolates listeners: each one runs in its own `try`; what it throws, and
 * what a Promise it returns rejects with, goes to `onFailure` instead of up the caller's stack. The
 * other listeners still run, in order.
 */
// `any[]`: the constraint of EventEmitter's own type parameter.
export class SafeEmitter<T extends Record<keyof T, any[]>> extends EventEmitter<T> {
  readonly #onFailure: ListenerFailure;

  constructor(onFailure: ListenerFailure) {
    super();
    this.#onFailure = onFailure;
  }

  // `any`: the base class types names and arguments from T; the isolation does not depend on them.
  override emit(name: any, ...args: any[]): boolean {
    const listeners = (this as EventEmitter).rawListeners(name) as Array<(...a: unknown[]) => unknown>;
    for (const listener of listeners) {
      try {
        const result = listener.apply(this, args);
        if (isThenable(result)) result.then(undefined, (err: unknown) => this.#fail(name, err, args));
      } catch (err) {
        this.#fail(name, err, args);
      }
    }
    return listeners.length > 0;
  }

  #fail(name: string | symbol, err: unknown, args: readonly unknown[]): void {
    try {
      this.#onFailure(String(name), err, args);
    } catch {
      // The failure handler is ours and must not throw; if it does, there is nowhere left to report.
    }
  }
}

/** A short, printable description of something thrown. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  try {
    return String(err);
  } catch {
    return 'unprintable error';
  }
}
