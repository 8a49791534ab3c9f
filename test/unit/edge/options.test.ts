/**
 * The edge's options: validated when the edge is created (ERR_INVALID_OPTION naming the option), with
 * finite defaults for every bound.
 */
import { edge, EdgeCache } from '../../../lib';
import { resolveEdgeOptions } from '../../../lib/edge';
import { codeOf, smoothErrorOf } from '../../helpers/errors';

describe('edge options', () => {
  it('defaults: every bound finite', () => {
    const o = resolveEdgeOptions({ upstream: 'http://origin:3000/live/' });
    expect(o).toMatchObject({
      upstreams: [{ url: 'http://origin:3000/live/', origin: 'http://origin:3000', prefix: '/live' }],
      maxSize: 256 * 2 ** 20,
      max: 10_000,
      maxEntrySize: 8 * 2 ** 20,
      maxResponseSize: 256 * 2 ** 20,
      timeout: 15_000,
      coolDown: 10_000,
      maxTtl: 86_400_000,
      errorTtl: 1000,
      staleWhileRevalidate: 2000,
      maxUpstreamRequests: 64,
      upstreamHeaders: {},
    });
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('takes several upstreams and headers for them', () => {
    const o = resolveEdgeOptions({ upstream: ['http://a:1', 'https://b/x'], upstreamHeaders: { Authorization: 'Bearer t' } });
    expect(o.upstreams.map((u) => [u.origin, u.prefix])).toEqual([
      ['http://a:1', ''],
      ['https://b', '/x'],
    ]);
    expect(o.upstreamHeaders).toEqual({ authorization: 'Bearer t' });
  });

  it.each([
    [{}, /options.upstream must be/],
    [{ upstream: [] }, /options.upstream must be/],
    [{ upstream: Array(17).fill('http://a') }, /1 to 16/],
    [{ upstream: 'origin:3000' }, /http: or https:/],
    [{ upstream: 'not a url' }, /is not a URL/],
    [{ upstream: 'ftp://a/live' }, /http: or https:/],
    [{ upstream: 'http://user:pw@a/live' }, /credentials/],
    [{ upstream: 'http://a/live?x=1' }, /query or fragment/],
    [{ upstream: ['http://a', 3] }, /options.upstream\[1\] must be a URL string/],
    [{ upstream: 'http://a', maxSize: 0 }, /options.maxSize must be an integer/],
    [{ upstream: 'http://a', maxSize: Infinity }, /options.maxSize/],
    [{ upstream: 'http://a', maxSize: 2 ** 20, maxEntrySize: 2 ** 21 }, /options.maxEntrySize must be an integer between 1024 and 1048576/],
    [{ upstream: 'http://a', maxEntrySize: 2 ** 20, maxResponseSize: 1000 }, /options.maxResponseSize/],
    [{ upstream: 'http://a', max: 0 }, /options.max /],
    [{ upstream: 'http://a', errorTtl: 5000 }, /options.errorTtl must be an integer between 0 and 1000/],
    [{ upstream: 'http://a', staleWhileRevalidate: 600_000 }, /options.staleWhileRevalidate/],
    [{ upstream: 'http://a', timeout: 0 }, /options.timeout/],
    [{ upstream: 'http://a', timeout: 1.5 }, /options.timeout/],
    [{ upstream: 'http://a', maxUpstreamRequests: 0 }, /options.maxUpstreamRequests/],
    [{ upstream: 'http://a', clock: {} }, /options.clock must have a now\(\) method/],
    [{ upstream: 'http://a', fetch: 'fetch' }, /options.fetch must be a function/],
    [{ upstream: 'http://a', upstreamHeaders: { Host: 'x' } }, /sets Host itself/],
    [{ upstream: 'http://a', upstreamHeaders: { 'X-A': 'a\r\nb' } }, /without line breaks/],
    [{ upstream: 'http://a', upstreamHeaders: { 'bad name': 'x' } }, /is not a header name/],
    [{ upstream: 'http://a', maxsize: 10 }, /options.maxsize is not an edge option/],
  ])('%j is refused', (options, message) => {
    const err = smoothErrorOf(() => edge(options as never));
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toMatch(message);
  });

  it('the core refuses the same way', () => {
    expect(codeOf(() => new EdgeCache(null as never))).toBe('ERR_INVALID_OPTION');
    expect(codeOf(() => new EdgeCache({ upstream: 'http://a' }).close())).toBeUndefined();
  });
});
