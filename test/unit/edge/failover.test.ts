/**
 * Failover across upstreams: a network error, a timeout or a 5xx from one sends the request to the
 * next; the edge sticks to the one that answered and skips a failed one for `coolDown`; when all fail
 * the client gets 502 (504 when all timed out) with a short reason, and the counters say which failed.
 */
import * as net from 'node:net';
import { edge, EdgeHandler, FailoverEvent, UpstreamFailureEvent } from '../../../lib';
import { FakeUpstream, answer, fakeClock, fakeUpstream, listen, serve } from '../../helpers/fake-upstream';

describe('edge: upstream failover', () => {
  let a: FakeUpstream;
  let b: FakeUpstream;
  let handler: EdgeHandler;
  let site: Awaited<ReturnType<typeof serve>>;
  let clock: ReturnType<typeof fakeClock>;
  const failures: UpstreamFailureEvent[] = [];
  const failovers: FailoverEvent[] = [];

  const start = async (upstream: string[], options: Partial<Parameters<typeof edge>[0]> = {}): Promise<void> => {
    handler = edge({ upstream, clock, coolDown: 10_000, ...options });
    handler.on('upstreamFailure', (e) => void failures.push(e)).on('failover', (e) => void failovers.push(e));
    site = await serve(handler);
  };
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const r = await fetch(`${site.url}${path}`);
    return { status: r.status, body: await r.text() };
  };
  const both = (path: string, cc = 'no-store'): void => {
    a.route(path, answer(`A${path}`, { 'Cache-Control': cc }));
    b.route(path, answer(`B${path}`, { 'Cache-Control': cc }));
  };

  beforeEach(async () => {
    a = await fakeUpstream();
    b = await fakeUpstream();
    clock = fakeClock();
    failures.length = 0;
    failovers.length = 0;
  });

  afterEach(async () => {
    handler?.close();
    await site?.close();
    await a.close();
    await b.close();
  });

  it('a 5xx from the first sends the request to the second, which then stays the one asked first', async () => {
    await start([a.url, b.url]);
    a.route('/x', answer('down', {}, 503));
    b.route('/x', answer('B', { 'Cache-Control': 'no-store' }));
    both('/y');
    expect(await get('/x')).toEqual({ status: 200, body: 'B' });
    expect(await get('/y')).toEqual({ status: 200, body: 'B/y' });
    expect(await get('/y')).toEqual({ status: 200, body: 'B/y' });
    expect([a.count(), b.count()]).toEqual([1, 3]);
    expect(failures).toEqual([expect.objectContaining({ upstream: 0, status: 503, path: '/x', reason: 'answered 503' })]);
    expect(failovers).toEqual([{ from: 0, to: 1, url: b.url }]);
    const [sa, sb] = handler.stats().upstreams;
    expect(sa).toMatchObject({ active: false, requests: 1, failures: 1, coolingDown: 10_000, lastFailure: 'answered 503' });
    expect(sb).toMatchObject({ active: true, requests: 3, failures: 0, coolingDown: 0 });
  });

  it('sticks to the healthy one after the cool-down, and goes back to the first when the second fails', async () => {
    await start([a.url, b.url]);
    a.route('/x', answer('down', {}, 500));
    b.route('/x', answer('B', { 'Cache-Control': 'no-store' }));
    await get('/x');
    clock.advance(10_001);
    both('/y');
    expect((await get('/y')).body).toBe('B/y');
    expect(a.count('/y')).toBe(0);
    b.route('/z', answer('down', {}, 502));
    a.route('/z', answer('A', { 'Cache-Control': 'no-store' }));
    expect((await get('/z')).body).toBe('A');
    expect(failovers.map((f) => f.to)).toEqual([1, 0]);
  });

  it('a refused connection fails over (a closed origin)', async () => {
    const dead = net.createServer();
    const deadUrl = await listen(dead as unknown as import('node:http').Server);
    await new Promise<void>((ok) => dead.close(() => ok()));
    await start([deadUrl, b.url]);
    both('/x');
    expect(await get('/x')).toEqual({ status: 200, body: 'B/x' });
    expect(failures[0]).toMatchObject({ upstream: 0, reason: 'failed: connection refused' });
  });

  it('a timeout fails over; when every upstream times out the client gets 504', async () => {
    await start([a.url, b.url], { timeout: 300 });
    a.route('/x', () => undefined); // never answers
    b.route('/x', answer('B', { 'Cache-Control': 'no-store' }));
    expect(await get('/x')).toEqual({ status: 200, body: 'B' });
    expect(failures[0]).toMatchObject({ upstream: 0, reason: 'timed out after 300 ms' });
    b.route('/slow', () => undefined);
    a.route('/slow', () => undefined);
    const r = await get('/slow');
    expect(r.status).toBe(504);
    expect(r.body).toMatch(/^edge: upstream 2 of 2 timed out after 300 ms; upstream 1 of 2 timed out after 300 ms\n$/);
  });

  it('a body broken off mid-way fails over', async () => {
    await start([a.url, b.url]);
    a.route('/x', (_req, res) => {
      res.writeHead(200, { 'Content-Length': '1000', 'Cache-Control': 'max-age=60' });
      res.write('only part of it');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    b.route('/x', answer('whole', { 'Cache-Control': 'max-age=60' }));
    expect(await get('/x')).toEqual({ status: 200, body: 'whole' });
    expect(failures[0]!.reason).toMatch(/^broke off its body/);
  });

  it('all failing: 502 with each reason, nothing kept, and the next request tries them again', async () => {
    await start([a.url, b.url]);
    a.route('/x', answer('', {}, 500));
    b.route('/x', answer('', {}, 503));
    const r = await get('/x');
    expect(r).toEqual({ status: 502, body: 'edge: upstream 1 of 2 answered 500; upstream 2 of 2 answered 503\n' });
    // Both cool down; a request still tries them (soonest back first) rather than give up unasked.
    expect((await get('/x')).status).toBe(502);
    expect([a.count(), b.count()]).toEqual([2, 2]);
    expect(handler.stats()).toMatchObject({ errors: 2, entries: 0 });
    expect(handler.stats().upstreams.map((u) => u.failures)).toEqual([2, 2]);
  });

  it('one upstream only: its 5xx is a 502', async () => {
    await start([a.url]);
    a.route('/x', answer('', {}, 500));
    expect((await get('/x')).status).toBe(502);
  });

  it('a fetch plugin that throws or answers nonsense is a failed upstream, not a crash', async () => {
    let calls = 0;
    const fetchPlugin = (input: string, init: RequestInit): Promise<Response> => {
      calls++;
      if (input.startsWith(a.url)) throw new Error('plugin bug');
      if (calls > 5) return Promise.resolve('nonsense' as unknown as Response);
      return fetch(input, init);
    };
    await start([a.url, b.url], { fetch: fetchPlugin, coolDown: 0 });
    both('/x');
    expect(await get('/x')).toEqual({ status: 200, body: 'B/x' });
    expect(failures[0]).toMatchObject({ upstream: 0, reason: 'failed: plugin bug' });
    for (let i = 0; i < 4; i++) await get('/x');
    const r = await get('/x');
    expect(r.status).toBe(502);
    expect(r.body).toContain('answered with something that is not an HTTP response');
  });
});
