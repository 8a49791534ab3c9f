/**
 * The layout the README's Architecture section draws, checked on the import specifiers of `lib/`:
 * no import cycles; only `http/` serves requests (and the simulated encoder, an HTTP client, makes
 * them); `mp4/` and `manifest/` are pure (no `node:` modules); layers import only from the layers
 * below them, and sibling modules meet only in the point and the HTTP edge.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

const LIB = path.join(__dirname, '..', '..', 'lib');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** `lib`-relative path, `/`-separated. */
const rel = (p: string): string => path.relative(LIB, p).split(path.sep).join('/');

const SOURCES = new Map(files(LIB).map((f) => [rel(f), readFileSync(f, 'utf8')]));

/** Every module specifier a file imports or re-exports (type-only ones included). */
function specifiers(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|require\('([^']+)'\)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

/** The lib file a relative specifier of `from` names. */
function resolveLocal(from: string, spec: string): string {
  const base = path.posix.join(path.posix.dirname(from), spec);
  for (const candidate of [`${base}.ts`, `${base}/index.ts`]) if (SOURCES.has(candidate)) return candidate;
  throw new Error(`${from}: cannot resolve ${spec}`);
}

const GRAPH = new Map(
  [...SOURCES].map(([file, text]) => {
    const specs = specifiers(text);
    return [
      file,
      {
        local: specs.filter((s) => s.startsWith('.')).map((s) => resolveLocal(file, s)),
        external: specs.filter((s) => !s.startsWith('.')),
      },
    ];
  }),
);

/** The top-level part of `lib` a file belongs to: a folder, or the file's own name. */
const area = (file: string): string => (file.includes('/') ? file.split('/')[0]! : file.replace(/\.ts$/, ''));

describe('lib/ layout', () => {
  it('reads every module (the scan itself works)', () => {
    expect(GRAPH.size).toBeGreaterThan(50);
    expect(GRAPH.get('point/index.ts')!.local).toContain('point/session.ts');
    expect(GRAPH.get('http/middleware.ts')!.external).toContain('node:http');
  });

  it('has no import cycle', () => {
    const state = new Map<string, 'active' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, trail: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'active') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'active');
      for (const next of GRAPH.get(file)!.local) visit(next, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of GRAPH.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('only http/ sees requests and responses (the encoder, an HTTP client, sends them)', () => {
    const offenders: string[] = [];
    for (const [file, text] of SOURCES) {
      if (file.startsWith('http/') || file.startsWith('encoder/')) continue;
      const { external } = GRAPH.get(file)!;
      if (external.some((s) => ['node:http', 'node:https', 'http', 'https', 'express', 'node:net'].includes(s))) offenders.push(`${file} imports HTTP`);
      if (/\b(IncomingMessage|ServerResponse)\b/.test(text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ''))) offenders.push(`${file} mentions req/res`);
    }
    expect(offenders).toEqual([]);
  });

  it('mp4/ and manifest/ import no node: module', () => {
    const offenders = [...GRAPH]
      .filter(([file]) => file.startsWith('mp4/') || file.startsWith('manifest/'))
      .flatMap(([file, g]) => g.external.filter((s) => s.startsWith('node:')).map((s) => `${file}: ${s}`));
    expect(offenders).toEqual([]);
  });

  it('each area imports only what lies below it; siblings meet in the point and the edge', () => {
    // What each area may import besides itself (the layers of the README's picture).
    const base = ['errors', 'model', 'media', 'mp4'];
    const allowed: Record<string, readonly string[]> = {
      errors: [],
      model: [],
      media: ['model'],
      mp4: ['errors', 'model', 'media'],
      smil: [],
      ingest: [...base, 'smil'],
      store: base,
      package: base,
      manifest: ['model'],
      definition: ['errors', 'manifest', 'smil'],
      options: [...base, 'definition', 'ingest', 'manifest', 'store'],
      point: [...base, 'definition', 'ingest', 'manifest', 'options', 'package', 'store'],
      files: [],
      origin: [...base, 'archive', 'definition', 'files', 'ondemand', 'options', 'point', 'pull'],
      pull: [...base, 'ingest', 'ismv', 'point'],
      archive: [...base, 'definition', 'files', 'ismv', 'manifest', 'point'],
      metrics: ['errors', 'origin', 'point'],
      http: [...base, 'archive', 'definition', 'edge', 'ingest', 'manifest', 'metrics', 'ondemand', 'options', 'origin', 'package', 'player', 'point', 'store'],
      player: [],
      ismv: [...base, 'ingest', 'manifest'],
      encoder: [...base, 'ingest', 'ismv', 'manifest', 'smil'],
      ondemand: [...base, 'ismv', 'manifest'],
      // The edge cache's core: an HTTP client of remote origins (global fetch), no requests or responses.
      edge: ['errors'],
      index: Object.keys(Object.fromEntries(SOURCES)).map(area),
    };
    const offenders: string[] = [];
    for (const [file, g] of GRAPH) {
      const from = area(file);
      const may = allowed[from];
      if (!may) {
        offenders.push(`${file}: area ${from} is not in the layer table`);
        continue;
      }
      for (const to of g.local.map(area)) if (to !== from && !may.includes(to)) offenders.push(`${file} → ${to}`);
    }
    expect(offenders).toEqual([]);
  });
});
