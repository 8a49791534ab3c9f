import { SmoothError } from '../../lib/errors';
import { smoothIngest } from '../../lib/ingest/parser';
import { SmoothManifestFormatter } from '../../lib/manifest/smooth';
import type { ManifestFormatter } from '../../lib/manifest/types';
import { LiveSmoothOptions, resolveOptions } from '../../lib/options';
import { memoryStore } from '../../lib/store/memory';

function invalid(options: unknown): SmoothError {
  try {
    resolveOptions(options as LiveSmoothOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(SmoothError);
    return err as SmoothError;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

/** A snapshot with one fragment run, to tell the manifest's minor version from its output. */
const snapshot = {
  isLive: true,
  timeScale: 10_000_000,
  duration: 0n,
  lookahead: 2,
  dvrWindowLength: 0n,
  streams: [],
};

describe('resolveOptions', () => {
  it('applies the documented defaults', () => {
    const o = resolveOptions();
    expect(o.defaults).toEqual({
      title: undefined,
      lookaheadChunks: 2,
      manifestWindowLength: 0,
      estimatedTime: 0,
      startOnFirstRequest: false,
      restartOnEncoderReconnect: false,
    });
    expect(o.maxBytesPerPoint).toBe(512 * 2 ** 20);
    expect(o.maxBoxSize).toBe(32 * 2 ** 20);
    expect(o.cors).toBe('*');
    expect(o.fragmentMaxAge).toBe(31536000);
    expect(o.ingestIdleTimeout).toBe(60000);
    expect(o.definitionCheckInterval).toBe(1000);
    expect(o.clock).toBe(Date);
    expect(o.store).toBe(memoryStore);
    expect(o.ingest).toBe(smoothIngest);
    expect(o.manifest).toBeInstanceOf(SmoothManifestFormatter);
    expect(o.manifest.render(snapshot)).toContain('MinorVersion="0"');
  });

  it('treats an empty object like no options', () => {
    const o = resolveOptions({});
    expect(o.defaults).toEqual(resolveOptions().defaults);
    expect(o.maxBoxSize).toBe(resolveOptions().maxBoxSize);
  });

  it('returns frozen options', () => {
    const o = resolveOptions();
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(o.defaults)).toBe(true);
  });

  it('keeps every valid value given', () => {
    const clock = { now: () => 42 };
    const store = memoryStore;
    const ingest = smoothIngest;
    const manifest: ManifestFormatter = { contentType: 'text/plain', render: () => 'x' };
    const o = resolveOptions({
      lookaheadChunks: 0,
      manifestWindowLength: 3600,
      estimatedTime: 7200,
      startOnFirstRequest: true,
      restartOnEncoderReconnect: true,
      maxBytesPerPoint: 1,
      maxBoxSize: 1024,
      cors: false,
      fragmentMaxAge: 0,
      ingestIdleTimeout: 0,
      definitionCheckInterval: 0,
      clock,
      store,
      manifest,
      ingest,
    });
    expect(o.defaults).toEqual({
      title: undefined,
      lookaheadChunks: 0,
      manifestWindowLength: 3600,
      estimatedTime: 7200,
      startOnFirstRequest: true,
      restartOnEncoderReconnect: true,
    });
    expect(o).toMatchObject({ maxBytesPerPoint: 1, maxBoxSize: 1024, cors: false, fragmentMaxAge: 0, ingestIdleTimeout: 0, definitionCheckInterval: 0 });
    expect(o.clock).toBe(clock);
    expect(o.manifest).toBe(manifest);
  });

  it('accepts the upper bounds', () => {
    const o = resolveOptions({ lookaheadChunks: 32, maxBoxSize: 2 ** 31, maxBytesPerPoint: Number.MAX_SAFE_INTEGER, manifestWindowLength: 0xffffffff });
    expect(o.defaults.lookaheadChunks).toBe(32);
    expect(o.maxBoxSize).toBe(2 ** 31);
  });

  it('builds the default manifest with minorVersion 2 when asked', () => {
    expect(resolveOptions({ minorVersion: 2 }).manifest.render(snapshot)).toContain('MinorVersion="2"');
  });

  it('accepts an origin string for cors', () => {
    expect(resolveOptions({ cors: 'https://player.example' }).cors).toBe('https://player.example');
  });

  const integers: Array<[string, unknown[]]> = [
    ['lookaheadChunks', [-1, 33, 1.5, NaN, '2', null]],
    ['manifestWindowLength', [-1, 2 ** 32, 0.5, Infinity, '0']],
    ['estimatedTime', [-1, 2 ** 32, 1.1, '10']],
    ['maxBytesPerPoint', [0, -1, Infinity, 1.5, Number.MAX_SAFE_INTEGER + 1, '1000']],
    ['maxBoxSize', [0, 1023, 2 ** 31 + 1, Infinity, 2048.5, '4096']],
    ['fragmentMaxAge', [-1, 2 ** 31 + 1, 0.5, '60']],
    ['ingestIdleTimeout', [-1, 2 ** 31 + 1, NaN, '60000']],
    ['definitionCheckInterval', [-1, 2 ** 31 + 1, 1.5, '1000']],
  ];
  for (const [name, values] of integers) {
    it.each(values.map((v) => [v]))(`rejects ${name} = %p, naming it`, (value) => {
      const err = invalid({ [name]: value });
      expect(err.code).toBe('ERR_INVALID_OPTION');
      expect(err.message).toContain(`options.${name}`);
    });
  }

  it.each([
    ['startOnFirstRequest', 'true'],
    ['startOnFirstRequest', 1],
    ['restartOnEncoderReconnect', 'false'],
    ['restartOnEncoderReconnect', null],
    ['minorVersion', 1],
    ['minorVersion', '2'],
    ['minorVersion', null],
    ['cors', true],
    ['cors', 0],
    ['cors', null],
    ['cors', '*\r\nSet-Cookie: a=b'],
    ['cors', 'https://a.example\n'],
    ['store', {}],
    ['store', null],
    ['ingest', 'smooth'],
    ['ingest', null],
    ['manifest', {}],
    ['manifest', { render: 'x' }],
    ['manifest', null],
    ['clock', {}],
    ['clock', null],
    ['clock', { now: 5 }],
  ])('rejects %s = %p, naming it', (name, value) => {
    const err = invalid({ [name]: value });
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toContain(`options.${name}`);
  });
});
