/**
 * The puller's requests to its upstreams: one GET, following at most a few redirects, with a timeout
 * and a bound on the body read.
 */
/** A `fetch` as the puller calls it (the global one by default; tests may pass another). */
export type Fetch = (url: string, init: { signal: AbortSignal; redirect: 'manual'; headers: Record<string, string> }) => Promise<Response>;

/** An upstream answer the puller could not use: why, and whether trying another upstream may help. */
export class UpstreamFailure extends Error {
  constructor(message: string) {
    super(message);
  }
}

/** An upstream's answer: its status, and the body of a 200. */
export interface UpstreamAnswer {
  status: number;
  bytes: Buffer;
}

/**
 * GETs `url` (following at most `maxRedirects` redirects), reading at most `max` bytes.
 * @throws UpstreamFailure for a timeout, a body over `max` or too many redirects; network errors as they come
 */
export async function getCapped(
  fetch: Fetch,
  url: string,
  o: { max: number; signal: AbortSignal; timeout: number; maxRedirects: number },
): Promise<UpstreamAnswer> {
  const { signal, max, timeout: ms } = o;
  // One controller per request, tied to the run by a listener removed when the request is done, and a
  // timer cleared then: AbortSignal.any() on the run's long-lived signal keeps something per request
  // until the run ends (Node 20), and AbortSignal.timeout()'s timer outlives the request.
  const request = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    request.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError'));
  }, ms);
  const onAbort = (): void => request.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  let target = url;
  try {
    for (let hops = 0; ; hops++) {
      const res = await fetch(target, { signal: request.signal, redirect: 'manual', headers: { accept: '*/*' } });
      if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
        await res.body?.cancel();
        if (hops >= o.maxRedirects) throw new UpstreamFailure(`more than ${o.maxRedirects} redirects`);
        target = new URL(res.headers.get('location')!, target).href;
        if (!/^https?:/.test(target)) throw new UpstreamFailure('a redirect leaves http(s)');
        continue;
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        return { status: res.status, bytes: Buffer.alloc(0) };
      }
      return { status: 200, bytes: await readCapped(res, max) };
    }
  } catch (err) {
    if (timedOut && !signal.aborted) throw new UpstreamFailure(`upstream did not answer within ${ms} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

/** Reads a response body, refusing one longer than `max` bytes without holding more than that. */
async function readCapped(res: Response, max: number): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body?.cancel();
    throw new UpstreamFailure(`upstream answer of ${declared} bytes is over the limit of ${max}`);
  }
  const parts: Buffer[] = [];
  let size = 0;
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new UpstreamFailure(`upstream answer is over the limit of ${max} bytes`);
    }
    parts.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
}

