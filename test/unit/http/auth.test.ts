/**
 * Ingest authorization without a server: the address and CIDR matcher (IPv4, IPv6, IPv4-mapped IPv6),
 * the credentials a request presents (`?token=`, Bearer, Basic), the `ingestAuth` option's validation,
 * and the decision for fake requests from any address: loopback only by default, then tokens, Basic
 * users, the allow-list and the hook, each with the identity it grants.
 */
import type { IncomingMessage } from 'node:http';
import { isSmoothError } from '../../../lib/errors';
import { HOOK_TIMEOUT_MS, IngestDecision, authorizeIngest, isLoopback, presentedCredentials } from '../../../lib/http/auth';
import { STATUS } from '../../../lib/http/status';
import { IngestAuthOptions, inAddressRange, parseAddress, parseAddressRange, resolveOptions } from '../../../lib/options';
import type { PublishingPoint } from '../../../lib/point';
import { smoothErrorOf } from '../../helpers/errors';

const TOKEN = 'a-long-shared-secret-1';
const OTHER_TOKEN = 'another-shared-secret-2';

function fakeReq(address: string | undefined, o: { url?: string; headers?: Record<string, string> } = {}): IncomingMessage {
  return { method: 'POST', url: o.url ?? '/ch1.isml/Streams(s)', headers: o.headers ?? {}, socket: { remoteAddress: address } } as unknown as IncomingMessage;
}

const POINT = { path: 'ch1.isml', state: 'Idle' } as unknown as PublishingPoint;

function decide(auth: IngestAuthOptions | undefined, req: IncomingMessage): IngestDecision | Promise<IngestDecision> {
  return authorizeIngest(req, POINT, resolveOptions({ ingestAuth: auth }).ingestAuth);
}

function syncDecide(auth: IngestAuthOptions | undefined, req: IncomingMessage): IngestDecision {
  const d = decide(auth, req);
  if (d instanceof Promise) throw new Error('expected a synchronous decision');
  return d;
}

/** `[status, identity or message]` of a decision. */
function summary(d: IngestDecision): [number, string] {
  return d.ok ? [200, d.identity] : [STATUS[d.error.code], d.error.message];
}

const basicHeader = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('addresses and CIDR ranges', () => {
  it.each([
    ['127.0.0.1', false, 0x7f000001n],
    ['0.0.0.0', false, 0n],
    ['255.255.255.255', false, 0xffffffffn],
    ['::1', true, 1n],
    ['::', true, 0n],
    ['2001:db8::8:800:200c:417a', true, 0x20010db80000000000080800200c417an],
    ['2001:DB8:0:0:8:800:200C:417A', true, 0x20010db80000000000080800200c417an],
    ['fe80::1%eth0', true, 0xfe800000000000000000000000000001n],
    ['[::1]', true, 1n],
    // IPv4-mapped IPv6 is the IPv4 address, in either notation.
    ['::ffff:127.0.0.1', false, 0x7f000001n],
    ['::ffff:7f00:1', false, 0x7f000001n],
    ['::FFFF:192.0.2.33', false, 0xc0000221n],
    ['64:ff9b::192.0.2.33', true, 0x0064ff9b0000000000000000c0000221n],
  ])('parses %s', (text, v6, value) => {
    expect(parseAddress(text)).toEqual({ v6, value });
  });

  it.each(['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', 'a.b.c.d', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '12345::', 'g::1', ':1', 'localhost', '::ffff:1.2.3.256'])(
    'refuses %j',
    (text) => {
      expect(parseAddress(text)).toBeUndefined();
    },
  );

  const inRange = (address: string, range: string): boolean => inAddressRange(parseAddress(address)!, parseAddressRange(range)!);

  it('matches IPv4 ranges, also for IPv4-mapped IPv6 peers', () => {
    expect(inRange('10.1.2.3', '10.0.0.0/8')).toBe(true);
    expect(inRange('11.0.0.1', '10.0.0.0/8')).toBe(false);
    expect(inRange('::ffff:10.1.2.3', '10.0.0.0/8')).toBe(true);
    expect(inRange('192.0.2.7', '192.0.2.7')).toBe(true);
    expect(inRange('192.0.2.8', '192.0.2.7')).toBe(false);
    expect(inRange('192.0.2.8', '192.0.2.7/31')).toBe(false);
    expect(inRange('192.0.2.6', '192.0.2.7/31')).toBe(true);
    expect(inRange('203.0.113.9', '0.0.0.0/0')).toBe(true);
    // An IPv4-mapped range written in IPv6 terms covers the IPv4 range.
    expect(inRange('10.9.9.9', '::ffff:10.0.0.0/104')).toBe(true);
    expect(inRange('11.9.9.9', '::ffff:10.0.0.0/104')).toBe(false);
  });

  it('matches IPv6 ranges and never mixes the families', () => {
    expect(inRange('2001:db8:1::5', '2001:db8::/32')).toBe(true);
    expect(inRange('2001:db9::5', '2001:db8::/32')).toBe(false);
    expect(inRange('fd00::2', 'fd00::/8')).toBe(true);
    expect(inRange('::1', '::1')).toBe(true);
    expect(inRange('::2', '::1')).toBe(false);
    expect(inRange('2001:db8::1', '::/0')).toBe(true);
    expect(inRange('10.0.0.1', '::/0')).toBe(false);
    expect(inRange('::ffff:10.0.0.1', '::/0')).toBe(false);
    expect(inRange('::1', '0.0.0.0/0')).toBe(false);
  });

  it.each(['10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/08', '::/129', '::ffff:10.0.0.0/95', 'x/8', '10.0.0.0/8/8'])('refuses the range %j', (text) => {
    expect(parseAddressRange(text)).toBeUndefined();
  });

  it('knows loopback: 127.0.0.0/8, ::1 and IPv4-mapped 127.x', () => {
    for (const a of ['127.0.0.1', '127.255.1.2', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a)).toBe(true);
    for (const a of ['128.0.0.1', '192.0.2.2', '::2', '::ffff:10.0.0.1', 'fd00::2', undefined, 'garbage']) expect(isLoopback(a)).toBe(false);
  });
});

describe('presented credentials', () => {
  it('reads ?token= and Authorization: Bearer', () => {
    expect(presentedCredentials('/a.isml/Streams(x)?token=abc%2Bdef&x=1', undefined)).toEqual({ tokens: ['abc+def'], basic: undefined });
    expect(presentedCredentials('/a.isml/Streams(x)', 'Bearer xyz')).toEqual({ tokens: ['xyz'], basic: undefined });
    expect(presentedCredentials('/a?token=q', 'bearer  h ')).toEqual({ tokens: ['q', 'h'], basic: undefined });
  });

  it('reads Authorization: Basic (the password may hold colons)', () => {
    expect(presentedCredentials('/', basicHeader('enc', 'p:w'))).toEqual({ tokens: [], basic: { user: 'enc', password: 'p:w' } });
  });

  it('ignores malformed headers', () => {
    for (const h of ['Basic', 'Basic !!!', `Basic ${Buffer.from('nocolon').toString('base64')}`, 'Digest abc', 'Bearer a b', '']) {
      expect(presentedCredentials('/', h)).toEqual({ tokens: [], basic: undefined });
    }
  });
});

describe('the ingestAuth option', () => {
  it.each<[string, unknown, RegExp]>([
    ['not an object', 'secret', /options\.ingestAuth must be an object/],
    ['an unknown method', { token: ['x'] }, /unknown method "token"/],
    ['tokens not an array', { tokens: TOKEN }, /ingestAuth\.tokens must be an array/],
    ['a short token', { tokens: ['short'] }, /tokens\[0\] must be a string of at least 16 characters/],
    ['a token with a space', { tokens: ['with a space in it ok'] }, /tokens\[0\]/],
    ['a Basic user with a colon', { basic: [{ user: 'a:b', password: 'x' }] }, /basic\[0\]\.user/],
    ['a Basic user without a password', { basic: [{ user: 'enc' }] }, /basic\[0\]\.password/],
    ['a bad allow entry', { allow: ['10.0.0.0/8', 'example.com'] }, /allow\[1\] must be an IPv4 or IPv6 address or CIDR range/],
    ['a hook that is no function', { authorize: true }, /authorize must be a function/],
  ])('refuses %s with ERR_INVALID_OPTION', (_what, ingestAuth, message) => {
    const err = smoothErrorOf(() => resolveOptions({ ingestAuth: ingestAuth as IngestAuthOptions }));
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toMatch(message);
  });

  it('keeps digests, never the secrets', () => {
    const resolved = resolveOptions({ ingestAuth: { tokens: [TOKEN], basic: [{ user: 'enc', password: 'pw' }] } }).ingestAuth;
    expect(JSON.stringify(resolved)).not.toContain(TOKEN);
    expect(JSON.stringify(resolved)).not.toContain('"pw"');
    expect(resolved.configured).toBe(true);
  });

  it('with no method (absent, or empty lists) is the loopback-only default', () => {
    expect(resolveOptions().ingestAuth.configured).toBe(false);
    expect(resolveOptions({ ingestAuth: { tokens: [], allow: [] } }).ingestAuth.configured).toBe(false);
  });
});

describe('the decision', () => {
  it('with nothing configured lets loopback in as the local identity and refuses others with 403 naming the option', () => {
    for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) expect(summary(syncDecide(undefined, fakeReq(a)))).toEqual([200, 'local']);
    for (const a of ['192.0.2.2', '::ffff:192.0.2.2', 'fd00::2', undefined]) {
      const [status, message] = summary(syncDecide(undefined, fakeReq(a)));
      expect(status).toBe(403);
      expect(message).toMatch(/only loopback may push.*ingestAuth option/);
    }
    expect(summary(syncDecide(undefined, fakeReq('203.0.113.5')))[1]).toContain('203.0.113.5');
  });

  it('with nothing configured refuses a loopback request that a proxy forwarded', () => {
    for (const h of ['forwarded', 'x-forwarded-for', 'x-real-ip']) {
      const [status, message] = summary(syncDecide(undefined, fakeReq('127.0.0.1', { headers: { [h]: '203.0.113.5' } })));
      expect([status, message]).toEqual([403, expect.stringContaining('proxied')]);
    }
  });

  it('accepts a token from the query or a Bearer header, as token:<index>', () => {
    const auth = { tokens: [TOKEN, OTHER_TOKEN] };
    expect(summary(syncDecide(auth, fakeReq('203.0.113.5', { url: `/ch1.isml/Streams(s)?token=${TOKEN}` })))).toEqual([200, 'token:0']);
    expect(summary(syncDecide(auth, fakeReq('203.0.113.5', { headers: { authorization: `Bearer ${OTHER_TOKEN}` } })))).toEqual([200, 'token:1']);
    // A wrong query token does not hide a right header.
    expect(summary(syncDecide(auth, fakeReq('203.0.113.5', { url: '/x?token=wrong', headers: { authorization: `Bearer ${TOKEN}` } })))).toEqual([200, 'token:0']);
  });

  it('answers 401 with a challenge for missing or wrong credentials, also from loopback', () => {
    const auth = { tokens: [TOKEN], basic: [{ user: 'enc', password: 'pw' }] };
    for (const req of [
      fakeReq('127.0.0.1'),
      fakeReq('203.0.113.5', { url: `/x?token=${TOKEN}x` }),
      fakeReq('203.0.113.5', { headers: { authorization: basicHeader('enc', 'wrong') } }),
      fakeReq('203.0.113.5', { headers: { authorization: basicHeader('nobody', 'pw') } }),
    ]) {
      const d = syncDecide(auth, req);
      expect(d.ok).toBe(false);
      if (d.ok) continue;
      expect([d.error.code, STATUS[d.error.code]]).toEqual(['ERR_UNAUTHORIZED', 401]);
      expect(d.headers['WWW-Authenticate']).toBe('Basic realm="live-smooth ingest", charset="UTF-8", Bearer realm="live-smooth ingest"');
    }
    const missing = syncDecide(auth, fakeReq('203.0.113.5'));
    expect(!missing.ok && missing.error.message).toMatch(/^ingest needs credentials: send a token .* or an HTTP Basic user$/);
    const wrong = syncDecide(auth, fakeReq('203.0.113.5', { url: '/x?token=nope' }));
    expect(!wrong.ok && wrong.error.message).toMatch(/^invalid credentials/);
  });

  it('with tokens only challenges with Bearer', () => {
    const d = syncDecide({ tokens: [TOKEN] }, fakeReq('203.0.113.5'));
    expect(!d.ok && d.headers).toEqual({ 'WWW-Authenticate': 'Bearer realm="live-smooth ingest"' });
  });

  it('accepts a Basic user as basic:<user>', () => {
    const auth = { basic: [{ user: 'enc', password: 'pw' }, { user: 'backup', password: 'pw2' }] };
    expect(summary(syncDecide(auth, fakeReq('203.0.113.5', { headers: { authorization: basicHeader('backup', 'pw2') } })))).toEqual([200, 'basic:backup']);
    expect(summary(syncDecide(auth, fakeReq('203.0.113.5', { headers: { authorization: basicHeader('backup', 'pw') } })))[0]).toBe(401);
  });

  it('accepts addresses of the allow-list as allow:<entry>, and refuses others with 403', () => {
    const auth = { allow: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.2'] };
    expect(summary(syncDecide(auth, fakeReq('10.1.2.3')))).toEqual([200, 'allow:10.0.0.0/8']);
    expect(summary(syncDecide(auth, fakeReq('::ffff:10.1.2.3')))).toEqual([200, 'allow:10.0.0.0/8']);
    expect(summary(syncDecide(auth, fakeReq('2001:db8:5::1')))).toEqual([200, 'allow:2001:db8::/32']);
    expect(summary(syncDecide(auth, fakeReq('192.0.2.2')))).toEqual([200, 'allow:192.0.2.2']);
    const [status, message] = summary(syncDecide(auth, fakeReq('203.0.113.5')));
    expect([status, message]).toEqual([403, 'ingest from 203.0.113.5 is not allowed (ingestAuth.allow)']);
    // Once a method is configured, loopback is not allowed by itself.
    expect(summary(syncDecide(auth, fakeReq('127.0.0.1')))[0]).toBe(403);
    expect(summary(syncDecide({ allow: ['127.0.0.1', '::1'] }, fakeReq('::ffff:127.0.0.1')))).toEqual([200, 'allow:127.0.0.1']);
  });

  it('asks the hook only when no other method accepted, with the request and the point', async () => {
    const calls: Array<[string | undefined, string]> = [];
    const auth: IngestAuthOptions = {
      tokens: [TOKEN],
      authorize: (req, point) => {
        calls.push([req.headers['x-key'] as string | undefined, point.path]);
        return req.headers['x-key'] === 'open sesame';
      },
    };
    expect(summary(syncDecide(auth, fakeReq('203.0.113.5', { url: `/x?token=${TOKEN}` })))).toEqual([200, 'token:0']);
    expect(calls).toEqual([]);
    expect(summary(syncDecide(auth, fakeReq('203.0.113.5', { headers: { 'x-key': 'open sesame' } })))).toEqual([200, 'hook']);
    expect(summary(syncDecide(auth, fakeReq('203.0.113.5', { headers: { 'x-key': 'nope' } })))[0]).toBe(401);
    expect(calls).toEqual([
      ['open sesame', 'ch1.isml'],
      ['nope', 'ch1.isml'],
    ]);
  });

  it('takes a Promise from the hook; only true accepts; a throw or rejection refuses (403), never crashes', async () => {
    const req = fakeReq('203.0.113.5');
    const verdict = async (authorize: IngestAuthOptions['authorize']): Promise<[number, string]> => summary(await decide({ authorize }, req));
    await expect(verdict(async () => true)).resolves.toEqual([200, 'hook']);
    await expect(verdict(async () => false)).resolves.toEqual([403, expect.stringContaining('ingestAuth.authorize')]);
    await expect(verdict((() => 'yes') as never)).resolves.toEqual([403, expect.any(String)]);
    await expect(verdict((() => 1) as never)).resolves.toEqual([403, expect.any(String)]);
    await expect(verdict(() => { throw new Error('boom'); })).resolves.toEqual([403, expect.any(String)]);
    await expect(verdict(() => Promise.reject(new Error('db down')))).resolves.toEqual([403, expect.any(String)]);
    await expect(verdict((() => Promise.resolve('true')) as never)).resolves.toEqual([403, expect.any(String)]);
  });

  it('refuses (403) when the hook has not answered within 10 s, so the connection does not wait for ever', async () => {
    jest.useFakeTimers();
    try {
      let settled: [number, string] | undefined;
      void Promise.resolve(decide({ authorize: () => new Promise<boolean>(() => undefined) }, fakeReq('203.0.113.5'))).then((d) => (settled = summary(d)));
      await jest.advanceTimersByTimeAsync(HOOK_TIMEOUT_MS - 1);
      expect(settled).toBeUndefined();
      await jest.advanceTimersByTimeAsync(1);
      expect(settled).toEqual([403, expect.stringContaining('ingestAuth.authorize')]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('refuses with SmoothErrors whose codes map to 401 and 403', () => {
    const d = syncDecide(undefined, fakeReq('203.0.113.5'));
    expect(!d.ok && isSmoothError(d.error) && d.error.code).toBe('ERR_FORBIDDEN');
    expect([STATUS.ERR_UNAUTHORIZED, STATUS.ERR_FORBIDDEN, STATUS.ERR_TRACK_TAKEN]).toEqual([401, 403, 409]);
  });
});
