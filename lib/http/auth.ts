/**
 * Ingest authorization: who may push to a publishing point. The middleware asks {@link authorizeIngest}
 * before a point sees an ingest POST (the empty probe POST included). Tokens, HTTP Basic users, an
 * address allow-list and a hook are tried in that order; the first that accepts names the encoder's
 * identity, which the point uses to keep other encoders off the tracks it feeds. With no method
 * configured, only loopback may push.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import createDebug from 'debug';
import { SmoothError } from '../errors';
import { LOOPBACK, ResolvedIngestAuth, inAddressRange, parseAddress, secretDigest } from '../options';
import type { PublishingPoint } from '../point';
import { LOCAL_IDENTITY } from '../point/session';

const debug = createDebug('live-smooth:ingest');

/** The realm of the `WWW-Authenticate` challenges. */
export const INGEST_REALM = 'live-smooth ingest';

/** An accepted request: the identity it pushes as (`token:<n>`, `basic:<user>`, `allow:<entry>`, `hook`, `local`). */
export interface IngestGrant {
  readonly ok: true;
  readonly identity: string;
}

/** A refused request: `ERR_UNAUTHORIZED` (401) or `ERR_FORBIDDEN` (403), and the challenge to send with a 401. */
export interface IngestRefusal {
  readonly ok: false;
  readonly error: SmoothError;
  readonly headers: Readonly<Record<string, string>>;
}

export type IngestDecision = IngestGrant | IngestRefusal;

/** The credentials a request presents. */
export interface PresentedCredentials {
  /** From `?token=` and `Authorization: Bearer`. */
  tokens: string[];
  /** From `Authorization: Basic`. */
  basic: { user: string; password: string } | undefined;
}

/** Reads `?token=` (the first one) and the `Authorization` header (Bearer or Basic; malformed ones are ignored). */
export function presentedCredentials(url: string | undefined, authorization: string | undefined): PresentedCredentials {
  const tokens: string[] = [];
  const q = url?.indexOf('?') ?? -1;
  if (q !== -1) {
    const t = new URLSearchParams(url!.slice(q + 1)).get('token');
    if (t !== null) tokens.push(t);
  }
  let basic: PresentedCredentials['basic'];
  const m = /^\s*(bearer|basic)\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (m && m[1]!.toLowerCase() === 'bearer') tokens.push(m[2]!);
  else if (m && /^[A-Za-z0-9+/]+={0,2}$/.test(m[2]!)) {
    const text = Buffer.from(m[2]!, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon > 0) basic = { user: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  return { tokens, basic };
}

/** Index of the digest equal to `digest`, every entry compared in constant time. */
function findDigest(digests: readonly Buffer[], digest: Buffer): number {
  let found = -1;
  digests.forEach((d, i) => {
    if (timingSafeEqual(d, digest) && found === -1) found = i;
  });
  return found;
}

/** True when `address` is loopback (127.0.0.0/8, ::1, ::ffff:127.x). */
export function isLoopback(address: string | undefined): boolean {
  const a = address === undefined ? undefined : parseAddress(address);
  return a !== undefined && LOOPBACK.some((r) => inAddressRange(a, r));
}

/** The request came through a proxy (whose own address is then the peer's). */
function proxied(req: IncomingMessage): boolean {
  const h = req.headers;
  return h.forwarded !== undefined || h['x-forwarded-for'] !== undefined || h['x-real-ip'] !== undefined;
}

/**
 * Decides whether `req` may push to `point`. Synchronous unless the `authorize` hook has to be asked.
 * Never rejects: a hook that throws or rejects refuses the request.
 * @param address - the peer's address, when read earlier (a closed socket no longer tells it)
 */
export function authorizeIngest(
  req: IncomingMessage,
  point: PublishingPoint,
  auth: ResolvedIngestAuth,
  address = req.socket.remoteAddress,
): IngestDecision | Promise<IngestDecision> {
  const shown = address ?? 'an unknown address';
  if (!auth.configured) {
    if (isLoopback(address) && !proxied(req)) return { ok: true, identity: LOCAL_IDENTITY };
    const why = isLoopback(address) ? `a proxied request (${shown} forwards it)` : `ingest from ${shown}`;
    return refusal(
      'ERR_FORBIDDEN',
      `${why} is refused: with no ingestAuth option only loopback may push; allow encoders with the ingestAuth option (tokens, basic, allow or authorize)`,
    );
  }
  const presented = presentedCredentials(req.url, req.headers.authorization);
  for (const token of auth.tokens.length > 0 ? presented.tokens : []) {
    const i = findDigest(auth.tokens, secretDigest(token));
    if (i !== -1) return { ok: true, identity: `token:${i}` };
  }
  if (presented.basic && auth.basic.length > 0) {
    const digest = secretDigest(`${presented.basic.user}:${presented.basic.password}`);
    const i = findDigest(
      auth.basic.map((b) => b.digest),
      digest,
    );
    if (i !== -1) return { ok: true, identity: `basic:${auth.basic[i]!.user}` };
  }
  const parsed = address === undefined ? undefined : parseAddress(address);
  const entry = parsed && auth.allow.find((r) => inAddressRange(parsed, r));
  if (entry) return { ok: true, identity: `allow:${entry.text}` };
  const refused = (): IngestRefusal => {
    if (auth.tokens.length > 0 || auth.basic.length > 0) {
      const what = presented.tokens.length > 0 || presented.basic ? 'invalid credentials' : 'ingest needs credentials';
      const how = [
        ...(auth.tokens.length > 0 ? ['a token (?token=… or Authorization: Bearer …)'] : []),
        ...(auth.basic.length > 0 ? ['an HTTP Basic user'] : []),
      ].join(' or ');
      return refusal('ERR_UNAUTHORIZED', `${what}: send ${how}`, {
        'WWW-Authenticate': [
          ...(auth.basic.length > 0 ? [`Basic realm="${INGEST_REALM}", charset="UTF-8"`] : []),
          ...(auth.tokens.length > 0 ? [`Bearer realm="${INGEST_REALM}"`] : []),
        ].join(', '),
      });
    }
    return refusal('ERR_FORBIDDEN', `ingest from ${shown} is not allowed (ingestAuth.allow${auth.authorize ? ' and ingestAuth.authorize' : ''})`);
  };
  if (!auth.authorize) return refused();
  const hookRefused = (err: unknown): IngestDecision => {
    debug('%s: ingestAuth.authorize failed: %O', point.path, err);
    return refused();
  };
  let verdict: unknown;
  try {
    verdict = auth.authorize(req, point);
  } catch (err) {
    return hookRefused(err);
  }
  const decide = (v: unknown): IngestDecision => (v === true ? { ok: true, identity: 'hook' } : refused());
  if (verdict !== null && typeof (verdict as { then?: unknown })?.then === 'function') {
    // A hook that never answers would hold the encoder's connection (and its slot) for ever.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error(`no answer within ${HOOK_TIMEOUT_MS} ms`)), HOOK_TIMEOUT_MS);
    });
    return Promise.race([Promise.resolve(verdict), late])
      .then(decide, hookRefused)
      .finally(() => clearTimeout(timer));
  }
  return decide(verdict);
}

/** Longest the `authorize` hook may take to answer; then the encoder is refused. */
export const HOOK_TIMEOUT_MS = 10_000;

function refusal(code: 'ERR_UNAUTHORIZED' | 'ERR_FORBIDDEN', message: string, headers: Record<string, string> = {}): IngestRefusal {
  return { ok: false, error: new SmoothError(code, message), headers };
}
