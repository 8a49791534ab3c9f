'use strict';
/**
 * 10. Edge caches in front of a live-smooth origin: GET rates of `liveSmooth.edge`, nginx `proxy_cache`
 * and Varnish (both from the configurations in examples/edge/) serving the same URLs of one live point,
 * all from their caches: the Smooth manifest, a ~100 KB fragment, and every listed fragment of the
 * window in turn. Then what reached the origin through each while the edge test's audience (50
 * simulated Smooth, DASH and HLS players each) watched a real-time push through all three at once.
 *
 * The edge adapters and the audience are the edge test's own (test/helpers/edges.ts, edge-load.ts), so
 * the counts here are measured the way the test asserts them; this section loads them with the tests'
 * TypeScript loader (the other sections need none).
 */
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Stream } = require('./lib/media');
const t = require('./lib/tools');

require('../helpers/ts-register');
const edges = require('../helpers/edges.ts');
const audience = require('../helpers/edge-load.ts');

const WINDOW_SLOTS = 60;
const TRACKS = [
  { kind: 'video', bitrate: 1_800_000, bytes: 100_000 },
  { kind: 'video', bitrate: 800_000, bytes: 45_000 },
  { kind: 'video', bitrate: 300_000, bytes: 17_000 },
  { kind: 'audio', bitrate: 100_000, bytes: 1_500 },
];
const AUDIENCE_SECONDS = Number(process.env.BENCH_EDGE_SECONDS || 30);
const SAMPLE = path.join(__dirname, '..', '..', 'examples', 'media', 'sample.ismv');

async function run(log, o = {}) {
  const lib = require(t.DIST);
  const hasEdge = typeof (lib.liveSmooth && lib.liveSmooth.edge) === 'function';
  const rates = await getRates(log, o, hasEdge);
  log(`  ${audienceLabel()}`);
  const watched = await watch(lib, hasEdge);
  for (const s of watched.summaries) {
    log(
      `  ${s.edge}: ${s.players} player requests → ${s.origin} at the origin; complete fragments ${s.complete} for ${s.completeUrls} URLs ` +
        `(most for one URL ${s.mostPerUrl}); manifests ${manifests(s, 'players')} → ${manifests(s, 'origin')}`,
    );
  }
  return { ...rates, ...watched, edgeInBuild: hasEdge };
}

function audienceLabel() {
  return `${audience.AUDIENCE.reduce((n, m) => n + m.count, 0)} players per edge for ${AUDIENCE_SECONDS} s, all edges at once`;
}

function manifests(s, side) {
  return ['manifest', 'mpd', 'hls-master', 'hls-media'].reduce((n, k) => n + s.byResource[k][side], 0);
}

/** The edges in front of `origin` (`http://host:port`): `[name, url for /live paths, url for raw paths]`. */
async function startEdges(origin, hasEdge, stopping) {
  const up = new URL(origin);
  const upstream = { host: up.hostname, port: Number(up.port) };
  const out = [];
  if (hasEdge) {
    const edge = await t.startServer('edge', { upstream: `${origin}/live` });
    stopping.push(edge);
    out.push(['liveSmooth.edge', edge.url, edge], ['liveSmooth.edge (node:http)', `${edge.rawUrl}`, edge]);
  }
  if (edges.nginxPath()) {
    const nginx = await edges.startNginx(upstream, { workers: 1 });
    stopping.push(nginx);
    out.push(['nginx', nginx.url]);
  }
  if (edges.varnishdPath()) {
    const varnish = await edges.startVarnish(upstream);
    stopping.push(varnish);
    out.push(['varnish', varnish.url]);
  }
  return out;
}

/** One GET on a kept-alive connection: status and X-Cache. */
function probe(url, agent) {
  return new Promise((ok, fail) => {
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => ok({ status: res.statusCode, cache: res.headers['x-cache'] }));
      })
      .on('error', fail);
  });
}

async function getRates(log, o, hasEdge) {
  const root = t.tmpDir('edge');
  fs.writeFileSync(path.join(root, 'out.isml'), t.isml());
  const origin = await t.startServer('smooth', { root });
  const stopping = [origin];
  let push;
  try {
    const stream = new Stream(TRACKS, 2);
    push = t.openPush(`${origin.url}/live/out.isml/Streams(bench)`);
    await push.write(stream.header);
    for (let i = 0; i < WINDOW_SLOTS; i++) await push.write(stream.slot(i));
    await t.waitPublished(origin, 'out.isml', (WINDOW_SLOTS - 2) * TRACKS.length);
    // The push stays open: the point is live, its manifest kept for max-age=1 and refreshed (304) by each edge.
    const manifest = (await t.get(`${origin.url}/live/out.isml/Manifest`)).body.toString();
    const { streams } = audience.parseSmooth(manifest);
    const listed = streams.flatMap((s) =>
      s.bitrates.flatMap((b) => s.times.map((time) => `/live/out.isml/${s.template.replace('{bitrate}', b).replace('{start time}', time)}`)),
    );
    const video = streams.find((s) => s.type === 'video');
    const fragment = `/live/out.isml/QualityLevels(1800000)/Fragments(video=${video.times[Math.floor(video.times.length / 2)]})`;
    const targets = await startEdges(origin.url, hasEdge, stopping);
    if (targets.length === 0) throw new Error('no edge to measure: liveSmooth.edge is not in this build and neither nginx nor varnishd is installed');
    const servers = [...targets, ['origin (liveSmooth)', origin.url, origin]];
    const rows = [
      { label: 'Smooth manifest', url: '/live/out.isml/Manifest' },
      { label: 'fragment, 100 KB video', url: fragment },
      { label: `${listed.length} fragments in turn`, paths: listed },
    ];
    const raw = (name, u) => (name === 'liveSmooth.edge (node:http)' ? u.slice('/live'.length) : u);
    for (const row of rows) {
      const sizes = [];
      // Fill every cache (twice: the second answer must come from it), then check what each says it did.
      for (const u of row.paths || [row.url]) {
        const r = await t.get(origin.url + u);
        if (r.status !== 200) throw new Error(`${u} answered ${r.status}`);
        sizes.push(r.body.length);
      }
      row.size = sizes.reduce((a, b) => a + b, 0) / sizes.length;
      row.cache = {};
      for (const [name, base] of servers) {
        const agent = new http.Agent({ keepAlive: true });
        const seen = new Map();
        for (let pass = 0; pass < 2; pass++) {
          for (const u of row.paths || [row.url]) {
            const r = await probe(base + raw(name, u), agent);
            if (r.status !== 200) throw new Error(`${name} ${u} answered ${r.status}`);
            if (pass === 1) seen.set(r.cache, (seen.get(r.cache) || 0) + 1);
          }
        }
        agent.destroy();
        row.cache[name] = [...seen].map(([k, v]) => `${k || '–'} ${v}`).join(', ');
      }
      // What reached the origin during each server's runs: none but the manifest's refreshes for an edge.
      const against = servers.map(([name, base]) => [name, row.paths ? base : base + raw(name, row.url)]);
      const nameOf = new Map(against.map(([name, u]) => [u, name]));
      row.originRequests = {};
      const counting = (measure) => async (u, x) => {
        const before = (await origin.call('stats')).requests;
        const r = await measure(u, x);
        const name = nameOf.get(u);
        row.originRequests[name] = (row.originRequests[name] || 0) + (await origin.call('stats')).requests - before;
        return r;
      };
      const measure = row.paths ? (u, x) => t.cannon(u, { ...x, paths: pathsFor(u, row.paths, servers) }) : t.cannon;
      if (row.paths) for (const [, u] of against) await measure(u, { seconds: 1, warm: false });
      row.ac = await t.compare(against, counting(measure), o.rounds);
      for (const [name, r] of Object.entries(row.ac)) {
        if (r.non2xx || r.errors) throw new Error(`${row.label}, ${name}: ${r.non2xx} non-2xx, ${r.errors} errors under load`);
      }
      if (t.WRK) {
        const scripts = new Map();
        if (row.paths) {
          for (const [, base] of servers) {
            const script = path.join(root, `walk-${scripts.size}.lua`);
            fs.writeFileSync(script, walkScript(pathsFor(base, row.paths, servers)));
            scripts.set(base, script);
          }
        }
        row.wrk = await t.compare(against, counting((u, x) => t.wrk(u, { ...x, script: scripts.get(u) })), 1);
      } else {
        row.wrk = {};
      }
      log(
        `  ${row.label} (${Math.round(row.size)} bytes${row.paths ? ' mean' : ''}): ` +
          Object.entries(row.ac)
            .map(([name, r]) => `${name} ${Math.round(r.rps)} req/s`)
            .join(', ') +
          `; origin requests during each server's runs: ${Object.entries(row.originRequests)
            .map(([name, n]) => `${name} ${n}`)
            .join(', ')}`,
      );
    }
    return { rates: rows.map(({ paths, ...r }) => ({ ...r, count: paths ? paths.length : 1 })) };
  } finally {
    if (push) push.req.destroy();
    await Promise.all(stopping.map((s) => s.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** The paths to walk on `base`: the raw edge port takes them without the mount point. */
function pathsFor(base, paths, servers) {
  const raw = servers.find(([name]) => name === 'liveSmooth.edge (node:http)');
  return raw && raw[1] === base ? paths.map((p) => p.slice('/live'.length)) : paths;
}

/** A wrk script that requests `paths` in turn. */
function walkScript(paths) {
  return `local paths = {\n${paths.map((p) => `  ${JSON.stringify(p)},`).join('\n')}\n}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
`;
}

/**
 * The edge test's audience through every edge at once, against an origin in this process (the build
 * under test, mounted in Express at /live) fed in real time by the simulated encoder.
 */
async function watch(lib, hasEdge) {
  const express = require('express');
  const { startEncoder } = require(path.join(t.DIST, 'encoder'));
  const root = t.tmpDir('edge-audience');
  fs.writeFileSync(path.join(root, 'ch1.isml'), t.isml());
  const origin = lib.createOrigin(root, { stateFile: false });
  const app = express();
  app.use('/live', lib.liveSmooth(origin));
  const adapters = [];
  if (hasEdge) {
    adapters.push({
      name: 'liveSmooth.edge',
      start: (up) => {
        const handler = lib.liveSmooth.edge({ upstream: `http://${up.host}:${up.port}/live` });
        const edgeApp = express();
        edgeApp.use('/live', handler);
        return edges.startHandler('liveSmooth.edge', edgeApp, () => handler.close());
      },
    });
  }
  if (edges.nginxPath()) adapters.push({ name: 'nginx', start: (up) => edges.startNginx(up) });
  if (edges.varnishdPath()) adapters.push({ name: 'varnish', start: (up) => edges.startVarnish(up) });
  let a;
  try {
    a = await audience.watch({
      origin: app,
      async encode(point) {
        const encoder = await startEncoder({ url: point, files: [SAMPLE], backlog: 10, streamId: 'bench' });
        return () => encoder.stop();
      },
      edges: adapters,
      players: audience.AUDIENCE,
      duration: AUDIENCE_SECONDS * 1000,
      ramp: 3000,
    });
    const failed = [...a.runs].filter(([, r]) => !r.edge).map(([name, r]) => `${name}: ${r.error && r.error.message}`);
    const lifetimes = {};
    for (const r of a.records) {
      if (r.status === 200 && ['manifest', 'mpd', 'hls-master', 'hls-media'].includes(audience.classify(r.url))) {
        lifetimes[r.cacheControl] = (lifetimes[r.cacheControl] || 0) + 1;
      }
    }
    return {
      audience: { players: audience.AUDIENCE.reduce((n, m) => n + m.count, 0), seconds: AUDIENCE_SECONDS, mix: audience.AUDIENCE },
      summaries: audience.summarize(a),
      failed,
      lifetimes,
    };
  } finally {
    if (a) await a.stop();
    origin.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

module.exports = { run };
