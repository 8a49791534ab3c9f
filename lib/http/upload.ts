/**
 * The HTTP side of CMAF upload (DASH-IF live media ingest, Interface 1, one segment per request, as
 * ffmpeg's `-f dash` sends it): PUT or POST of an MPD and of the segments its templates name below a
 * `.isml` point, DELETE of what was uploaded. Each request is authorized as an ingest POST is, its
 * body read whole within a bound, then handed to the point's {@link UploadChannel}. Failures are
 * answered with the DASH-IF ingest statuses: 403 for a point that takes no encoder now, 404 for a path
 * no template names, 412 for a media segment before its init segment, 415 for an init segment the
 * point cannot take, 413 for a body over the bound, 400 for malformed input.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { SmoothError, SmoothErrorCode, isSmoothError } from '../errors';
import { MPD_LIMITS, isMpdPath } from '../ingest/mpd';
import { UploadChannel, UploadResult, Uploader } from '../ingest/upload';
import type { ResolvedOptions } from '../options';
import type { PublishingPoint } from '../point';
import { isThenable } from '../store/types';
import { IngestDecision, authorizeIngest } from './auth';
import type { Resource } from './routes';
import { STATUS } from './status';

const debug = createDebug('live-smooth:ingest');

/** What the upload handler borrows from the middleware, so that it answers as ingest does. */
export interface UploadHttp {
  readonly options: ResolvedOptions;
  /** Sets the CORS header (the `cors` option). */
  cors(res: ServerResponse): void;
  /**
   * Answers an ingest request with an error (`status`, else the code's) and closes its connection once
   * the rest of its body was read or after a bound.
   */
  refuse(req: IncomingMessage, res: ServerResponse, point: PublishingPoint, err: unknown, headers?: Record<string, string>, status?: number): void;
}

/** Where DASH-IF ingest (§ Failure Behaviors) says otherwise than the table of Smooth ingest. */
const UPLOAD_STATUS: Partial<Record<SmoothErrorCode, number>> = {
  ERR_POINT_STATE: 403,
  ERR_TRACK_TAKEN: 403,
  ERR_ENCODER_RESTART: 400,
  ERR_ENCODER_BEHIND: 400,
  ERR_TIME_JUMP: 400,
  ERR_BOX_TOO_LARGE: 413,
};

/** The status an upload failure is answered with. */
export function uploadStatus(err: unknown): number {
  if (!isSmoothError(err)) return 500;
  return UPLOAD_STATUS[err.code] ?? STATUS[err.code];
}

/** The status of a PUT or POST that went in (a DELETE's is 204). */
const SUCCESS: Readonly<Record<UploadResult, number>> = { manifest: 200, init: 200, media: 200, nothing: 200, held: 202, removed: 204 };

/**
 * True when `method` on `resource` is an upload: a write below a point to a path the point does not
 * serve itself (its manifests, segments and `Streams()` keep their own answers).
 */
export function isUpload(method: string | undefined, resource: Resource): boolean {
  return (method === 'PUT' || method === 'POST' || method === 'DELETE') && resource.kind === 'unknown';
}

/** The decoded path below the `.isml` segment of a URL that `parseRoute` accepted. */
function pathBelowPoint(url: string): string {
  const segments = url.split('?')[0]!.slice(1).split('/').map(decodeURIComponent);
  return segments.slice(segments.findIndex((s) => /\.isml$/i.test(s)) + 1).join('/');
}

/** An upload's body as it is read (whole, an error, or nothing when the request went away) and its peer. */
interface Received {
  readonly body: Promise<Buffer | SmoothError | undefined>;
  /** Read while the socket was open: a request read whole may be served after it closed. */
  readonly address: string | undefined;
}

/** The upload side of the middleware. */
export interface UploadHandler {
  /**
   * Starts reading the body of an upload request as it arrives, before its point is known. Its bytes
   * count against the bodies all uploads may hold at once while it is read and, once whole, until `res`
   * is done; a body cut short or refused gives them back at once.
   */
  receive(req: IncomingMessage, res: ServerResponse): void;
  /** Serves an upload request to a point that exists. */
  serve(req: IncomingMessage, res: ServerResponse, point: PublishingPoint): void;
}

/** Creates the upload side of the middleware. */
export function uploadHandler(http: UploadHttp): UploadHandler {
  const { options } = http;
  const channels = new WeakMap<PublishingPoint, UploadChannel>();
  /** Bodies being read or read, by request (see `receive`). */
  const bodies = new WeakMap<IncomingMessage, Received>();
  // Bodies are read before the request is authorized, so what all of them hold at once is bounded:
  // room for a body of the largest size and another, far more than uploads of real segments take.
  const maxHeld = 2 * options.maxBoxSize;
  let held = 0;
  const channelOf = (point: PublishingPoint): UploadChannel => {
    let channel = channels.get(point);
    if (!channel) {
      channel = new UploadChannel({
        open: (streamId, parser, u) => point.openIngest(streamId, u.remoteAddress, parser, u.identity),
        maxBoxSize: options.maxBoxSize,
        idleTimeout: options.ingestIdleTimeout,
      });
      channels.set(point, channel);
    }
    return channel;
  };

  const refuse = (req: IncomingMessage, res: ServerResponse, point: PublishingPoint, err: unknown, headers?: Record<string, string>): void => {
    if (isSmoothError(err)) debug('%s: upload %s %s refused: %s', point.path, req.method, req.url, err.message);
    http.refuse(req, res, point, err, headers, uploadStatus(err));
  };

  const ok = (res: ServerResponse, point: PublishingPoint, status: number): void => {
    point.responses.count('ingest', status);
    http.cors(res);
    res.writeHead(status, status === 204 ? { 'Cache-Control': 'no-store' } : { 'Content-Length': '0', 'Cache-Control': 'no-store' });
    res.end();
  };

  const admitted = (req: IncomingMessage, res: ServerResponse, point: PublishingPoint, decision: IngestDecision, received: Received): void => {
    if (!decision.ok) return refuse(req, res, point, decision.error, decision.headers);
    let path: string;
    try {
      if (point.settings.sourceType === 'Pull') {
        throw new SmoothError('ERR_POINT_STATE', 'this publishing point pulls from its sources (sourceType=Pull); it takes no uploads');
      }
      path = pathBelowPoint(req.url ?? '/');
      if (req.method !== 'DELETE') point.checkIngest();
    } catch (err) {
      return refuse(req, res, point, err);
    }
    const channel = channelOf(point);
    const uploader: Uploader = { identity: decision.identity, remoteAddress: received.address };
    // Counted until its body is read and handled (or the request went away), whatever its socket does.
    const over = channel.begin();
    received.body
      .then((body) => {
        if (!body) return; // the request went away
        try {
          if (body instanceof SmoothError) throw body;
          const result = req.method === 'DELETE' ? channel.delete(path) : channel.put(path, body, uploader);
          ok(res, point, req.method === 'DELETE' ? 204 : SUCCESS[result]);
        } catch (e) {
          refuse(req, res, point, e);
        }
      })
      .catch((err: unknown) => {
        // Answering failed (the connection went meanwhile): nothing is left to tell the encoder.
        debug('%s: upload %s %s: %O', point.path, req.method, req.url, err);
        if (!res.writableEnded) res.destroy();
      })
      .finally(over);
  };

  /**
   * Starts reading an upload's body, at once: ffmpeg closes its connection as soon as it has sent a
   * request, and Node drops a request whose body nobody read by then, which happens whenever the point
   * is resolved or the request authorized asynchronously. At most the bound is kept; the rest is read
   * and dropped, to be refused.
   */
  const receive = (req: IncomingMessage, res: ServerResponse): void => {
    if (bodies.has(req) || consumed(req)) return;
    const cap = isMpdPath(pathBelowPoint(req.url ?? '/')) ? MPD_LIMITS.maxBytes : options.maxBoxSize;
    const declared = Number(req.headers['content-length']);
    const chunks: Buffer[] = [];
    let size = 0;
    let idle: NodeJS.Timeout | undefined;
    let settle!: (body: Buffer | SmoothError | undefined) => void;
    const body = new Promise<Buffer | SmoothError | undefined>((ok) => (settle = ok));
    bodies.set(req, { body, address: req.socket.remoteAddress });
    let finished = false;
    let counted = 0;
    const release = (): void => {
      held -= counted;
      counted = 0;
    };
    const finish = (body: Buffer | SmoothError | undefined): void => {
      if (finished) return;
      finished = true;
      clearTimeout(idle);
      req.removeListener('data', onData);
      // Only a whole body stays counted, until it was handled and answered.
      if (!Buffer.isBuffer(body)) {
        chunks.length = 0;
        release();
      }
      settle(body);
    };
    const tooLarge = (): SmoothError => new SmoothError('ERR_BOX_TOO_LARGE', `the body exceeds the ${cap} bytes an upload to this path may have`);
    // Once answered (or gone), nothing more is read into memory, and what was is given back.
    res.once('close', () => {
      finish(undefined);
      release();
    });
    const onData = (chunk: Buffer): void => {
      idle?.refresh();
      size += chunk.length;
      if (size > cap) return finish(tooLarge());
      if (held + chunk.length > maxHeld) {
        return finish(new SmoothError('ERR_BUDGET_EXCEEDED', `uploads hold ${maxHeld} bytes of bodies at once; retry`));
      }
      held += chunk.length;
      counted += chunk.length;
      chunks.push(chunk);
    };
    if (declared > cap) return finish(tooLarge());
    if (options.ingestIdleTimeout > 0) {
      idle = setTimeout(() => finish(new SmoothError('ERR_INGEST_IDLE', 'no data from the encoder within the idle timeout')), options.ingestIdleTimeout).unref();
    }
    req.on('data', onData);
    req.once('end', () => {
      if (!finished) finish(Buffer.concat(chunks, size));
    });
    req.once('close', () => finish(undefined)); // after 'end' this changes nothing
    req.on('error', () => undefined); // 'close' follows
  };

  const consumed = (req: IncomingMessage): boolean =>
    req.readableEnded || req.readableDidRead || (req as { body?: unknown }).body !== undefined;

  const serve = (req: IncomingMessage, res: ServerResponse, point: PublishingPoint): void => {
    if (!bodies.has(req) && consumed(req)) {
      return refuse(req, res, point, new SmoothError('ERR_BODY_CONSUMED', 'the upload body was consumed by a body parser mounted before live-smooth'));
    }
    receive(req, res);
    const received = bodies.get(req)!;
    // Every request is authorized: a segment is an ingest request of its own.
    const decision = authorizeIngest(req, point, options.ingestAuth, received.address);
    if (!isThenable(decision)) return admitted(req, res, point, decision, received);
    // Answered even when the encoder has gone meanwhile: its body was read, and ffmpeg never waits.
    decision.then(
      (d) => admitted(req, res, point, d, received),
      (err: unknown) => refuse(req, res, point, err),
    );
  };

  return { receive, serve };
}
