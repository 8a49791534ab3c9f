/**
 * The package as an application installs it: built into a folder of its own with this package.json,
 * then loaded by name from a separate Node process. The main entry stays small (no dash.js, no
 * simulated encoder, no test suite loaded); the encoder, the sample player and the store conformance
 * suite load from their subpaths, with their type declarations next to them.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
let pkg: string;

beforeAll(() => {
  pkg = mkdtempSync(path.join(tmpdir(), 'live-smooth-package-'));
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', path.join(pkg, 'dist')], {
    cwd: ROOT,
    stdio: 'pipe',
  });
  cpSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
}, 120_000);

afterAll(() => {
  if (pkg) rmSync(pkg, { recursive: true, force: true });
});

/** Runs `code` in a fresh Node process inside the package (so `require('live-smooth…')` names it) and returns its JSON output. */
function run(code: string): unknown {
  const file = path.join(pkg, 'check.js');
  writeFileSync(file, `'use strict';\nconst out = (() => {\n${code}\n})();\nprocess.stdout.write(JSON.stringify(out));\n`);
  return JSON.parse(execFileSync(process.execPath, [file], { cwd: pkg, encoding: 'utf8' }));
}

describe('package entries', () => {
  it('the main entry: the origin, the middleware and the modules, without dash.js, the encoder or the test suite', () => {
    const out = run(`
      const m = require('live-smooth');
      const loaded = Object.keys(require.cache);
      return {
        exports: ['liveSmooth', 'createOrigin', 'diskStore', 'memoryStore', 'smoothFragment', 'cmafSegment', 'initSegment'].map((k) => [k, typeof m[k]]),
        admin: typeof m.liveSmooth.admin,
        defaultIsLiveSmooth: m.default === m.liveSmooth,
        player: 'player' in m || 'player' in m.liveSmooth,
        encoder: 'startEncoder' in m,
        dashjs: loaded.some((f) => f.includes('dashjs')),
        encoderFiles: loaded.some((f) => f.includes('/dist/encoder/')),
        playerFiles: loaded.some((f) => f.includes('/dist/player/') || f.includes('/dist/http/player')),
        conformance: loaded.some((f) => f.includes('conformance')),
      };
    `);
    expect(out).toEqual({
      exports: [
        ['liveSmooth', 'function'],
        ['createOrigin', 'function'],
        ['diskStore', 'function'],
        ['memoryStore', 'function'],
        ['smoothFragment', 'function'],
        ['cmafSegment', 'function'],
        ['initSegment', 'function'],
      ],
      admin: 'function',
      defaultIsLiveSmooth: true,
      player: false,
      encoder: false,
      dashjs: false,
      encoderFiles: false,
      playerFiles: false,
      conformance: false,
    });
  });

  it('live-smooth/encoder, live-smooth/player and live-smooth/store-conformance load by name', () => {
    const out = run(`
      return {
        encoder: ['startEncoder', 'SimulatedEncoder', 'openSource'].map((k) => typeof require('live-smooth/encoder')[k]),
        player: typeof require('live-smooth/player').player,
        conformance: typeof require('live-smooth/store-conformance').storeConformance,
        dashjsAfterPlayer: Object.keys(require.cache).some((f) => f.includes('dashjs')),
      };
    `);
    // The player resolves dash.js when a handler is made, not when its module loads.
    expect(out).toEqual({ encoder: ['function', 'function', 'function'], player: 'function', conformance: 'function', dashjsAfterPlayer: false });
  });

  it('every entry has its type declarations where package.json says', () => {
    const exportsMap = (require(path.join(pkg, 'package.json')) as { exports: Record<string, { types?: string; default?: string } | string> }).exports;
    for (const [entry, target] of Object.entries(exportsMap)) {
      if (typeof target === 'string') continue;
      expect({ entry, types: existsSync(path.join(pkg, target.types!)), code: existsSync(path.join(pkg, target.default!)) }).toEqual({
        entry,
        types: true,
        code: true,
      });
    }
    expect(Object.keys(exportsMap)).toEqual(['.', './encoder', './player', './store-conformance', './package.json']);
  });

  it('the encoder command is built', () => {
    expect(existsSync(path.join(pkg, 'dist', 'encoder', 'cli.js'))).toBe(true);
  });
});
