import { IIS_DEFAULTS, SettingsOverrides, readDefinition, resolveSettings, writeDefinition } from '../../lib/definition';
import { SmoothError } from '../../lib/errors';
import { smoothIngest } from '../../lib/ingest/smooth';
import { SmoothManifestFormatter } from '../../lib/manifest/smooth';
import type { ManifestFormatter } from '../../lib/manifest/types';
import { LiveSmoothOptions, Mapping, layersFor, resolveOptions } from '../../lib/options';
import { memoryStore } from '../../lib/store/memory';
import { smoothErrorOf } from '../helpers/errors';

function invalid(options: unknown): SmoothError {
  return smoothErrorOf(() => resolveOptions(options as LiveSmoothOptions));
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
    // The site layer only sets what differs from IIS: startOnFirstRequest defaults to true here
    // (a deliberate deviation, see LiveSmoothOptions.startOnFirstRequest); the rest is IIS_DEFAULTS.
    expect(o.defaults).toEqual({ startOnFirstRequest: true });
    expect(resolveSettings(layersFor(o, 'ch1.isml'))).toEqual({ ...IIS_DEFAULTS, startOnFirstRequest: true });
    expect(o.mappings).toEqual([]);
    expect(o.stateFile).toBeUndefined();
    expect(o.sourceLostTimeout).toBe(60000);
    expect(o.maxBytesPerPoint).toBe(512 * 2 ** 20);
    expect(o.maxBoxSize).toBe(32 * 2 ** 20);
    expect(o.cors).toBe('*');
    expect(o.fragmentMaxAge).toBe(31536000);
    expect(o.ingestIdleTimeout).toBe(60000);
    expect(o.edgeWait).toBe(10000);
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

  it('edgeWait: 0 (answer at once) up to 60000 ms', () => {
    expect(resolveOptions({ edgeWait: 0 }).edgeWait).toBe(0);
    expect(resolveOptions({ edgeWait: 60000 }).edgeWait).toBe(60000);
    expect(resolveOptions({ edgeWait: 2500 }).edgeWait).toBe(2500);
    expect(resolveOptions({ edgeWait: undefined }).edgeWait).toBe(10000);
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
    ['edgeWait', [-1, 60001, 1.5, '5', NaN, Infinity, null]],
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

describe('settings layers: site defaults, mappings, definition', () => {
  /** The text of a minimal `.isml` setting `metas`. */
  const isml = (metas: Record<string, string>): string =>
    writeDefinition('', Object.fromEntries(Object.entries(metas)));

  /** Effective settings of `rel` with `options`, under the overrides of its `.isml` text. */
  const effective = (options: LiveSmoothOptions, rel: string, text = ''): ReturnType<typeof resolveSettings> => {
    const o = resolveOptions(options);
    return resolveSettings([...layersFor(o, rel), readDefinition(text).overrides]);
  };

  // Given out of order: the most specific path must win whatever the order of the list.
  const SPORTS: LiveSmoothOptions = {
    settings: { manifestWindowLength: 60, title: 'site' },
    mappings: [
      { path: '/sports/finals', manifestWindowLength: 600 },
      { path: '/sports', manifestWindowLength: 300, estimatedTime: 7200 },
    ],
  };

  it.each([
    ['ch1.isml', 60, 0],
    ['sports/game.isml', 300, 7200],
    ['sports/finals/game.isml', 600, 7200],
    ['sports/finals/day2/game.isml', 600, 7200],
    // Folder segments, not string prefixes; paths anchored at the root.
    ['sportsball/game.isml', 60, 0],
    ['sports.isml', 60, 0],
    ['news/sports/game.isml', 60, 0],
    ['sports/finals.isml', 300, 7200],
  ])('%s: manifestWindowLength %p, estimatedTime %p', (rel, window, estimated) => {
    const s = effective(SPORTS, rel);
    expect([s.manifestWindowLength, s.estimatedTime, s.title]).toEqual([window, estimated, 'site']);
  });

  it('layersFor lists the site layer, then the matching mappings, least specific first', () => {
    const o = resolveOptions(SPORTS);
    expect(layersFor(o, 'sports/finals/game.isml')).toEqual([
      { startOnFirstRequest: true, manifestWindowLength: 60, title: 'site' },
      { manifestWindowLength: 300, estimatedTime: 7200 },
      { manifestWindowLength: 600 },
    ]);
    expect(layersFor(o, 'ch1.isml')).toEqual([{ startOnFirstRequest: true, manifestWindowLength: 60, title: 'site' }]);
  });

  it('the .isml overrides every mapping; removing its meta reverts to the inherited value', () => {
    const text = isml({ manifestWindowLength: '30', title: 'Final' });
    expect(effective(SPORTS, 'sports/finals/game.isml', text)).toMatchObject({ manifestWindowLength: 30, title: 'Final', estimatedTime: 7200 });
    const removed = writeDefinition(text, { manifestWindowLength: null });
    expect(effective(SPORTS, 'sports/finals/game.isml', removed)).toMatchObject({ manifestWindowLength: 600, title: 'Final' });
    const both = writeDefinition(removed, { title: null });
    expect(effective(SPORTS, 'sports/finals/game.isml', both)).toMatchObject({ manifestWindowLength: 600, title: 'site' });
    expect(effective(SPORTS, 'sports/game.isml', both).manifestWindowLength).toBe(300);
    expect(effective(SPORTS, 'ch1.isml', both).manifestWindowLength).toBe(60);
    // With nothing anywhere, the IIS default.
    expect(effective({}, 'sports/finals/game.isml', both).manifestWindowLength).toBe(IIS_DEFAULTS.manifestWindowLength);
  });

  it('top-level options win over options.settings; both sit under the mappings', () => {
    const o: LiveSmoothOptions = {
      lookaheadChunks: 3,
      settings: { lookaheadChunks: 5, startOnFirstRequest: false },
      mappings: [{ path: 'tv', lookaheadChunks: 1 }],
    };
    expect(effective(o, 'ch1.isml')).toMatchObject({ lookaheadChunks: 3, startOnFirstRequest: false });
    expect(effective(o, 'tv/ch1.isml').lookaheadChunks).toBe(1);
    expect(effective({ startOnFirstRequest: false }, 'ch1.isml').startOnFirstRequest).toBe(false);
  });

  it('a mapping path may have or omit its slashes; "/" applies to every point', () => {
    for (const path of ['sports', '/sports', 'sports/', '//sports//']) {
      expect(effective({ mappings: [{ path, lookaheadChunks: 7 }] }, 'sports/a.isml').lookaheadChunks).toBe(7);
    }
    expect(effective({ mappings: [{ path: '/', lookaheadChunks: 7 }] }, 'a.isml').lookaheadChunks).toBe(7);
    expect(effective({ mappings: [{ path: '/', lookaheadChunks: 7 }, { path: '/x', lookaheadChunks: 8 }] }, 'x/a.isml').lookaheadChunks).toBe(8);
  });

  it('a mapping can turn off the site default startOnFirstRequest for its folder', () => {
    const o: LiveSmoothOptions = { mappings: [{ path: '/manual', startOnFirstRequest: false }] };
    expect(effective(o, 'auto.isml').startOnFirstRequest).toBe(true);
    expect(effective(o, 'manual/ch.isml').startOnFirstRequest).toBe(false);
  });

  it('contradictions are found in the merged settings, whichever layer brings them', () => {
    const o: LiveSmoothOptions = { mappings: [{ path: '/auto', restartOnEncoderReconnect: true }] };
    expect(effective(o, 'auto/ch.isml').restartOnEncoderReconnect).toBe(true); // the site default starts on first request
    expect(() => effective(o, 'auto/ch.isml', isml({ startOnFirstRequest: 'False' }))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_DEFINITION' }),
    );
  });

  it('freezes the mappings', () => {
    const o = resolveOptions(SPORTS);
    expect(Object.isFrozen(o.mappings)).toBe(true);
    expect(Object.isFrozen(o.mappings[0])).toBe(true);
    expect(Object.isFrozen(o.mappings[0]!.settings)).toBe(true);
  });

  it('does not keep a reference to the mapping objects passed in', () => {
    const m: Mapping = { path: '/a', lookaheadChunks: 1 };
    const o = resolveOptions({ mappings: [m] });
    m.lookaheadChunks = 9;
    expect(layersFor(o, 'a/x.isml')[1]).toEqual({ lookaheadChunks: 1 });
  });

  it.each<[string, unknown, RegExp]>([
    ['not an array', { path: '/a' }, /options\.mappings must be an array/],
    ['a null entry', [null], /options\.mappings\[0\] needs a path/],
    ['a string entry', ['/sports'], /options\.mappings\[0\] needs a path/],
    ['an entry without a path', [{ lookaheadChunks: 1 }], /options\.mappings\[0\] needs a path/],
    ['a numeric path', [{ path: 5 }], /options\.mappings\[0\] needs a path/],
    ['a ".." segment', [{ path: '/ok' }, { path: '/a/../b' }], /options\.mappings\[1\]\.path/],
    ['a "." segment', [{ path: './a' }], /options\.mappings\[0\]\.path/],
    ['a backslash', [{ path: '\\a' }], /options\.mappings\[0\]\.path/],
    ['a NUL', [{ path: '/a\0' }], /options\.mappings\[0\]\.path/],
    ['an unknown setting', [{ path: '/a', lookahead: 1 }], /options\.mappings\[0\]: unknown setting "lookahead"/],
    ['an invalid value', [{ path: '/a', lookaheadChunks: 99 }], /options\.mappings\[0\]: lookaheadChunks/],
    ['an invalid boolean', [{ path: '/a', startOnFirstRequest: 'sometimes' }], /options\.mappings\[0\]: startOnFirstRequest/],
  ])('rejects mappings with %s, naming the entry', (_name, mappings, message) => {
    const err = invalid({ mappings });
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toMatch(message);
  });

  it.each<[string, unknown, RegExp]>([
    ['null', null, /options\.settings/],
    ['a string', 'lookaheadChunks=2', /options\.settings/],
    ['an unknown meta', { lookahead: 2 }, /unknown setting "lookahead"/],
    ['an invalid value', { manifestWindowLength: -1 }, /manifestWindowLength/],
  ])('rejects options.settings that is %s', (_name, settings, message) => {
    const err = invalid({ settings });
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toMatch(message);
  });

  it('accepts .isml metas beyond the top-level shortcuts in options.settings', () => {
    const overrides: SettingsOverrides = { publishing: 'Fragments;Streams;Archives', archiveSegmentLength: 3600, 'm3u8-aapl-maxbitrate': 1600000 };
    expect(effective({ settings: overrides }, 'a.isml')).toMatchObject(overrides);
  });
});

describe('state and source-lost options', () => {
  it('stateFile: a path or false', () => {
    expect(resolveOptions({ stateFile: false }).stateFile).toBe(false);
    expect(resolveOptions({ stateFile: '/var/lib/live/state.json' }).stateFile).toBe('/var/lib/live/state.json');
  });

  it.each(['', 5, true, null])('rejects stateFile = %p', (stateFile) => {
    const err = invalid({ stateFile });
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toContain('options.stateFile');
  });

  it('sourceLostTimeout: 0 (wait forever) up to 2^31 ms', () => {
    expect(resolveOptions({ sourceLostTimeout: 0 }).sourceLostTimeout).toBe(0);
    expect(resolveOptions({ sourceLostTimeout: 2 ** 31 }).sourceLostTimeout).toBe(2 ** 31);
  });

  it.each([-1, 1.5, 2 ** 31 + 1, '1000', null, Infinity])('rejects sourceLostTimeout = %p', (sourceLostTimeout) => {
    const err = invalid({ sourceLostTimeout });
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toContain('options.sourceLostTimeout');
  });
});
