/**
 * One outgoing stream of the simulated encoder: a long chunked `POST <point>.isml/Streams(<id>)`
 * (MS-SSTR 3.3.4), re-established when it drops. A new connection gets the identical header boxes, then
 * the last two fragments already sent of each track (the Azure/IIS rule, protocol doc §2.10), then the
 * stream continues; `finish()` ends it with an empty `mfra` (end of stream, §2.9). Retries back off
 * (doubling, bounded); a refusal that retrying cannot change ends the push.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { emptyMfra } from '../mp4/edit';
import { EncoderError } from './errors';
import type { OutgoingFragment } from '../ismv/fragment';

/** Events of a `SimulatedEncoder`; its POSTs emit most of them. */
export interface EncoderEvents {
  /** A POST was (re)established; `reconnect` is false for the first one. */
  connected: [info: { streamId: string; reconnect: boolean }];
  /** A POST failed; the encoder retries after `retryIn` ms. */
  disconnected: [info: { streamId: string; error: Error; retryIn: number }];
  /**
   * A fragment was sent for the first time. `track` indexes `status().tracks`: the source's tracks, then
   * the sparse tracks (captions, ad markers).
   */
  fragment: [info: { streamId: string; track: number; loop: number; time: bigint; duration: bigint; bytes: number }];
  /**
   * The sparse stream (captions, ad markers) failed for good: the server refused it or reconnecting gave
   * up. The media streams go on without it.
   */
  sparseFailed: [info: { streamId: string; error: Error }];
  /** The push ended (loops done or stopped; `error` when it failed). */
  end: [info: { error: Error | undefined }];
}

/** Statuses that retrying cannot change: the stream or the URL is wrong. */
const FATAL_STATUSES = new Set([400, 401, 403, 404, 405, 413, 415]);
/** A connection that carried fragments for this long resets the backoff. */
const HEALTHY_MS = 1000;

/** Thrown when the encoder stops while a stream cannot connect. */
export class Stopped extends Error {}

/** An error for an HTTP answer that ended a POST. */
class StatusError extends Error {
  constructor(
    readonly status: number,
    body: string,
  ) {
    super(`HTTP ${status}${body ? `: ${body}` : ''}`);
  }
}

/**
 * Reads the start of an answer (at most ~512 characters) and calls back once: with the status and text,
 * or `undefined` when the answer broke off.
 */
function readAnswer(res: http.IncomingMessage, done: (answer: StatusError | undefined) => void): void {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => {
    if (body.length < 512) body += d;
  });
  res.once('end', () => done(new StatusError(res.statusCode ?? 0, body.trim().slice(0, 200))));
  res.once('error', () => done(undefined));
}

/** One request on the wire and what has failed it. */
interface Attempt {
  req: http.ClientRequest;
  /** performance.now() when it was opened. */
  openedAt: number;
  alive: boolean;
  /** Our end of stream went out: its close is not a failure. */
  ending: boolean;
  /** What ended it first. */
  error: Error | undefined;
  /** The server's answer, when it answered before the end of stream (a refusal). */
  refusal: StatusError | undefined;
  /** Rejecters of the writes in flight, called when the request fails. */
  pending: Set<(err: Error) => void>;
  /** Resolves with the final status once a response arrived or the connection closed. */
  ended: Promise<number | undefined>;
}

/** A fragment kept for the reconnect resend: bytes and send order. */
interface Kept {
  moof: Buffer;
  mdat: Buffer;
  order: number;
}

/** Settings an {@link IngestPost} shares with its encoder. */
export interface PostContext {
  options: {
    headers: Readonly<Record<string, string>>;
    requestOptions: https.RequestOptions;
    reconnect: { minDelay: number; maxDelay: number; maxAttempts: number };
    sendTimeout: number;
  };
  /** Aborted when the encoder stops: backoff sleeps end early. */
  signal: AbortSignal;
  onBytes(n: number): void;
  emit<K extends keyof EncoderEvents>(event: K, ...args: EncoderEvents[K]): boolean;
  onReconnect(): void;
}

/**
 * One stream: a chunked POST to `Streams(<id>)`, re-established when it drops. Keeps the header and the
 * last two fragments of each of its tracks for the resend.
 */
export class IngestPost {
  readonly url: URL;
  readonly streamId: string;
  readonly #header: Buffer;
  readonly #ctx: PostContext;
  readonly #kept: Kept[][];
  #attempt: Attempt | undefined;
  /** The attempt that failed last, until the next #connect has dealt with it. */
  #broken: Attempt | undefined;
  /** Failures in a row, for the backoff; reset by a fragment sent on a connection that has lasted. */
  #failures = 0;
  #connecting: Promise<Attempt> | undefined;
  #order = 0;
  #sequence = 0;
  #connectedOnce = false;
  /** Ended on purpose by {@link IngestPost.close}: the next send opens a new POST, not a reconnect. */
  #parked = false;

  constructor(url: URL, streamId: string, header: Buffer, tracks: number, ctx: PostContext) {
    this.url = url;
    this.streamId = streamId;
    this.#header = header;
    this.#ctx = ctx;
    this.#kept = Array.from({ length: tracks }, () => []);
  }

  get connected(): boolean {
    return this.#attempt?.alive ?? false;
  }

  /**
   * No connection and none wanted now: not opened yet (no fragment to send so far), or closed on purpose
   * between sparse events (see {@link IngestPost.close}). Not a failure.
   */
  get idle(): boolean {
    return !this.connected && !this.#broken && !this.#connecting && (this.#parked || !this.#connectedOnce);
  }

  /** The next `mfhd.sequence_number` of this stream. */
  nextSequence(): number {
    return ++this.#sequence;
  }

  /**
   * Sends one fragment of local track `local`, reconnecting as needed (a new connection first gets the
   * header and the resend); resolves once the fragment is handed to the socket.
   * @throws Stopped when the encoder stops while it cannot connect; EncoderError when it gives up
   */
  async send(local: number, fragment: OutgoingFragment): Promise<void> {
    const kept: Kept = { moof: fragment.moof, mdat: fragment.mdat, order: this.#order++ };
    for (;;) {
      // A reconnect resends the fragments already sent, then this one goes out on the new connection.
      const attempt = await this.#ensure(this.#ctx.options.reconnect.maxAttempts);
      try {
        await this.#writeKept(attempt, kept);
        // A refusing server takes the first writes before it answers: only a connection that has lasted
        // counts as healthy again.
        if (performance.now() - attempt.openedAt >= HEALTHY_MS) this.#failures = 0;
        break;
      } catch (err) {
        this.#fail(attempt, err as Error); // the next #ensure reconnects
      }
    }
    // Kept only once sent: a reconnect resends the last two fragments the server may have lost.
    const list = this.#kept[local]!;
    list.push(kept);
    if (list.length > 2) list.shift();
  }

  /**
   * Ends the stream cleanly: an empty `mfra` (end of stream), then the end of the chunked body. When the
   * connection is down it tries to re-establish it (only once when the encoder is stopping).
   * @returns the server's final status, if it answered
   */
  async finish(): Promise<number | undefined> {
    const once = this.#ctx.signal.aborted;
    let attempt: Attempt;
    try {
      attempt = await this.#ensure(once ? 1 : this.#ctx.options.reconnect.maxAttempts, once);
    } catch (err) {
      if (err instanceof Stopped || (err instanceof EncoderError && err.code === 'ERR_ENCODER_GAVE_UP' && once)) return undefined;
      throw err;
    }
    try {
      await this.#write(attempt, emptyMfra());
    } catch {
      return undefined;
    }
    const status = await this.#finish(attempt);
    // Some servers (or a wrong URL behind a catch-all handler) read the whole body and only then refuse it.
    if (status !== undefined && status >= 300) {
      throw new EncoderError('ERR_ENCODER_REJECTED', `${this.url.href} answered the stream with ${attempt.refusal?.message ?? status}`, {
        status,
      });
    }
    return status;
  }

  /** Ends the request body and waits for the answer's status (up to 5 s; `undefined` for none). */
  async #finish(attempt: Attempt): Promise<number | undefined> {
    attempt.ending = true;
    attempt.req.end();
    const timer = setTimeout(() => attempt.req.destroy(), 5000);
    try {
      return await attempt.ended;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Ends the POST cleanly without end of stream, as Azure asks of sparse streams between events; the
   * next {@link IngestPost.send} opens a new POST with the header. Once the server has answered 2xx it
   * holds every fragment sent, so the new POST resends none of them. A refusal in the answer is dealt
   * with by that next connection, as a dropped POST is.
   */
  async close(): Promise<void> {
    const attempt = this.#attempt;
    if (!attempt?.alive) return;
    attempt.alive = false; // nothing more goes on this request
    const status = await this.#finish(attempt);
    if (status !== undefined && status < 300) {
      for (const list of this.#kept) list.length = 0;
      this.#parked = true;
      this.#failures = 0; // a POST the server took whole is as healthy as one that lasted
    } else if (status === undefined) {
      // No answer: the server may have lost the last fragments; the next connection resends them. (A
      // refusal was recorded when it arrived.)
      this.#failures++;
      this.#broken = attempt;
    }
  }

  /** Drops the connection without an end of stream. */
  abort(): void {
    this.#attempt?.req.destroy();
  }

  #ensure(maxAttempts: number, once = false): Promise<Attempt> {
    if (this.#attempt?.alive) return Promise.resolve(this.#attempt);
    if (!this.#connecting) {
      this.#connecting = this.#connect(maxAttempts, once).finally(() => (this.#connecting = undefined));
    }
    return this.#connecting;
  }

  /**
   * Opens a POST and sends the header and the resend. After a failure it first waits (doubling from
   * `minDelay` up to `maxDelay` per failure in a row), unless the failure was a refusal that retrying
   * cannot change.
   * @param once - stopping: one more attempt, at once, whatever failed before
   */
  async #connect(maxAttempts: number, once: boolean): Promise<Attempt> {
    const { minDelay, maxDelay } = this.#ctx.options.reconnect;
    for (let tries = 0; ; tries++) {
      const last = this.#broken;
      if (last) {
        // The server's answer explains a failure better than the broken pipe it causes: give it a moment.
        await Promise.race([last.ended, delay(200)]);
        last.req.destroy();
        const error = last.refusal ?? last.error ?? new Error('connection closed');
        if (error instanceof StatusError && FATAL_STATUSES.has(error.status)) {
          throw new EncoderError('ERR_ENCODER_REJECTED', `${this.url.href} refused the stream: ${error.message}`, {
            status: error.status,
          });
        }
        if (once ? tries > 0 : this.#failures >= maxAttempts) {
          throw new EncoderError('ERR_ENCODER_GAVE_UP', `${this.url.href}: no connection after ${this.#failures} attempts: ${error.message}`);
        }
        const retryIn = once ? 0 : Math.min(maxDelay, minDelay * 2 ** (this.#failures - 1));
        this.#ctx.emit('disconnected', { streamId: this.streamId, error, retryIn });
        try {
          if (retryIn > 0) await delay(retryIn, undefined, { signal: this.#ctx.signal });
        } catch {
          throw new Stopped();
        }
        this.#broken = undefined;
      }
      if (this.#ctx.signal.aborted && !once) throw new Stopped();
      // The empty probe POST (MS-SSTR 3.3.4.1) surfaces a refusal as a plain answer. A refusal of the
      // long POST itself races with the broken pipe it causes, which can hide the status.
      const probe = await this.#probe();
      if (probe && FATAL_STATUSES.has(probe.status)) {
        throw new EncoderError('ERR_ENCODER_REJECTED', `${this.url.href} refused the stream: ${probe.message}`, { status: probe.status });
      }
      const attempt = this.#open();
      try {
        await this.#write(attempt, this.#header);
        // The last two fragments of every track, in the order they were first sent.
        const resend = this.#kept.flat().sort((a, b) => a.order - b.order);
        for (const kept of resend) await this.#writeKept(attempt, kept);
        this.#attempt = attempt;
        // Reopening a POST closed on purpose is a new connection, not a recovery.
        const reconnect = this.#connectedOnce && !this.#parked;
        this.#connectedOnce = true;
        this.#parked = false;
        if (reconnect) this.#ctx.onReconnect();
        this.#ctx.emit('connected', { streamId: this.streamId, reconnect });
        return attempt;
      } catch (err) {
        this.#fail(attempt, err as Error); // usually recorded already, by whatever broke the write
      }
    }
  }

  /** Records the first failure of an attempt: it counts towards the backoff and is handled by the next #connect. */
  #fail(attempt: Attempt, err: Error): void {
    if (attempt.error) return;
    attempt.error = err;
    attempt.alive = false;
    for (const reject of attempt.pending) reject(err);
    attempt.pending.clear();
    if (attempt.ending && !attempt.refusal) return; // the close of a stream we ended
    this.#failures++;
    this.#broken = attempt;
  }

  /**
   * Sends the empty probe POST (`Content-Length: 0`).
   * @returns the answer, or `undefined` when there was none (the real POST then finds out why)
   */
  #probe(): Promise<StatusError | undefined> {
    return new Promise((ok) => {
      const req = this.#request({ 'Content-Length': '0' });
      req.on('error', () => ok(undefined));
      req.on('response', (res) => readAnswer(res, (answer) => ok(answer)));
      req.setTimeout(this.#ctx.options.sendTimeout, () => req.destroy(new Error('probe timed out')));
      req.end();
    });
  }

  /** A POST to the stream URL with the configured headers and TLS options (one connection each). */
  #request(headers: Record<string, string>): http.ClientRequest {
    const { requestOptions } = this.#ctx.options;
    const request = this.url.protocol === 'https:' ? https.request : http.request;
    return request(this.url, {
      ...requestOptions,
      method: 'POST',
      agent: requestOptions.agent ?? false,
      headers: { ...headers, 'User-Agent': 'live-smooth-encoder', ...this.#ctx.options.headers },
    });
  }

  /** Opens one chunked POST and wires up everything that can end it. */
  #open(): Attempt {
    const { sendTimeout } = this.#ctx.options;
    const req = this.#request({ 'Transfer-Encoding': 'chunked', Connection: 'close' });
    let resolveEnded!: (status: number | undefined) => void;
    const attempt: Attempt = {
      req,
      openedAt: performance.now(),
      alive: true,
      ending: false,
      error: undefined,
      refusal: undefined,
      pending: new Set(),
      ended: new Promise((ok) => (resolveEnded = ok)),
    };
    const fail = (err: Error): void => this.#fail(attempt, err);
    req.on('socket', (socket) => socket.setNoDelay(true));
    req.on('error', fail);
    req.on('response', (res) => {
      // The server answers an ingest POST only when it ends it: after our end of stream, or to refuse it.
      readAnswer(res, (answer) => {
        if (!attempt.ending || res.statusCode! >= 300) {
          attempt.refusal = answer ?? new StatusError(res.statusCode ?? 0, '');
          fail(attempt.refusal);
        }
        resolveEnded(res.statusCode);
      });
    });
    req.on('close', () => {
      fail(new Error('connection closed'));
      resolveEnded(undefined);
    });
    req.setTimeout(sendTimeout, () => req.destroy(new Error(`no progress for ${sendTimeout} ms`)));
    req.flushHeaders();
    return attempt;
  }

  /** Writes one buffer; resolves once it is handed to the socket, rejects when the request fails first. */
  #write(attempt: Attempt, data: Buffer): Promise<void> {
    if (!attempt.alive) return Promise.reject(attempt.error ?? new Error('connection closed'));
    return new Promise<void>((ok, fail) => {
      const reject = (err: Error): void => fail(err);
      attempt.pending.add(reject);
      attempt.req.write(data, (err) => {
        attempt.pending.delete(reject);
        if (err) fail(err);
        else {
          this.#ctx.onBytes(data.length);
          ok();
        }
      });
    });
  }

  async #writeKept(attempt: Attempt, kept: Kept): Promise<void> {
    await this.#write(attempt, kept.moof);
    await this.#write(attempt, kept.mdat);
  }
}
