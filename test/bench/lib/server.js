'use strict';
/**
 * A server under test, run as a child process of the benchmark (so it never shares an event loop with
 * the load generator). Started with `fork(__filename, [kind, JSON config])`; it reports its port over
 * IPC and answers `{ id, cmd }` messages with `{ id, result }`.
 *
 * Kinds:
 * - `smooth`: Express 5 with `app.use('/live', liveSmooth(root, options))`, the way the README mounts it;
 *   the same handler also serves a second port on its own (`rawPort`, URLs without `/live`).
 * - `static`: Express 5 with `express.static(dir)`, serving the same bytes as files.
 * - `bare`: a bare `node:http` handler writing each file's bytes from a Buffer held in memory.
 * - `express-bare`: that same handler mounted in Express 5 (`app.use(handler)`), Express's own cost.
 * - `edge`: Express 5 with `app.use('/live', liveSmooth.edge({ upstream }))`, the way the README mounts
 *   it in front of a remote origin; the same handler also serves `rawPort` on its own (URLs without `/live`).
 */
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');

const [kind, configText] = process.argv.slice(2);
const config = JSON.parse(configText || '{}');
const now = () => performance.timeOrigin + performance.now();

let handler;
let app;
if (kind === 'smooth') {
  const express = require('express');
  const lib = require(config.dist);
  const options = { ...(config.options || {}) };
  // The store on disk, when the benchmark asks for it (options travel as JSON, the factory cannot).
  if (config.disk) options.store = lib.diskStore(config.disk);
  handler = lib.liveSmooth(config.root, options);
  app = express();
  app.use('/live', handler);
} else if (kind === 'edge') {
  const express = require('express');
  const lib = require(config.dist);
  handler = lib.liveSmooth.edge({ upstream: config.upstream, ...(config.options || {}) });
  app = express();
  app.use('/live', handler);
} else if (kind === 'static') {
  const express = require('express');
  app = express();
  app.use(express.static(config.dir));
} else if (kind === 'bare' || kind === 'express-bare') {
  const files = new Map();
  for (const name of fs.readdirSync(config.dir)) {
    const body = fs.readFileSync(path.join(config.dir, name));
    const type = name.endsWith('.xml') ? 'application/vnd.ms-sstr+xml; charset=utf-8' : 'video/mp4';
    files.set(`/${name}`, { body, type, length: String(body.length) });
  }
  app = (req, res) => {
    const f = files.get(req.url);
    if (!f) {
      res.writeHead(404, { 'Content-Length': '0' });
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': f.type, 'Content-Length': f.length });
    res.end(f.body);
  };
  if (kind === 'express-bare') {
    // The same handler mounted in Express 5: what Express alone costs per request.
    const express = require('express');
    const bare = app;
    app = express();
    app.use(bare);
  }
} else {
  throw new Error(`unknown server kind ${kind}`);
}

/** Requests this server was sent (both ports): what reached an origin behind an edge. */
let requests = 0;
const counted = (listener) => (req, res) => {
  requests++;
  listener(req, res);
};
const server = http.createServer({ requestTimeout: 0, headersTimeout: 10_000, keepAliveTimeout: 30_000 }, counted(app));
server.maxConnections = 10_000; // the viewers run opens 2,000 keep-alive connections
server.maxRequestsPerSocket = 0;
const loop = monitorEventLoopDelay({ resolution: 5 });

// Availability log (smooth only): when each fragment was published, for the ingest benchmarks.
let published = 0;
const publishedBy = {};
/** Fragments stored per point (each `fragment` event), and the archives' side (points with `Archives`). */
const storedBy = {};
const archive = { peak: 0, events: [], sampling: false };
let rejected = 0;
/** Fragments a store refused or lost (reason `error`). */
let lost = 0;
let publishLog;
const renders = [];
let measureRenders;
if (handler && kind === 'smooth') {
  // The origin reports each fragment when it is stored; it is published (served and listed) once the
  // point's lookahead behind it exists, or when the stream ends. The same rule, followed here from the
  // events, gives the moment each fragment is published.
  const held = new Map();
  const onPublished = (point, track, time) => {
    published++;
    publishedBy[point] = (publishedBy[point] || 0) + 1;
    if (publishLog) publishLog.push([point, track, String(time), now()]);
    if (measureRenders && point === measureRenders) {
      // Cost of making the manifest current again after a new fragment: the first GET after a change
      // renders it (snapshot of the window + XML), later GETs reuse it.
      const p = handler.origin.points().find((x) => x.path === point);
      const t0 = performance.now();
      p.manifest();
      renders.push(performance.now() - t0);
    }
  };
  // The archive write queue fills when the archiver appends a fragment (after this event, which the origin
  // forwards first) and drains as the disk takes the writes: sampled here and once the parsed batch is done.
  const sampleQueue = () => {
    const { pending } = handler.origin.archiver.queue;
    if (pending > archive.peak) archive.peak = pending;
  };
  handler.origin.on('fragment', (e) => {
    storedBy[e.point] = (storedBy[e.point] || 0) + 1;
    sampleQueue();
    if (!archive.sampling) {
      archive.sampling = true;
      setImmediate(() => {
        archive.sampling = false;
        sampleQueue();
      });
    }
    const key = `${e.point}\n${e.track}`;
    let queue = held.get(key);
    if (!queue) held.set(key, (queue = []));
    queue.push(e.fragment.time);
    const lookahead = handler.origin.points().find((x) => x.path === e.point).settings.lookaheadChunks;
    while (queue.length > lookahead) onPublished(e.point, e.track, queue.shift());
  });
  handler.origin.on('state', (e) => {
    if (e.state !== 'Stopped' && e.state !== 'Idle') return;
    for (const [key, queue] of held) {
      const [point, track] = key.split('\n');
      if (point !== e.point) continue;
      // Stopped publishes the held tail; a shutdown drops it.
      if (e.state === 'Stopped') while (queue.length > 0) onPublished(point, track, queue.shift());
      held.delete(key);
    }
  });
  handler.origin.on('inputRejected', () => rejected++);
  handler.origin.on('archive', (e) => {
    if (e.state === 'failed') archive.events.push({ point: e.point, state: e.state, code: e.code, message: e.message });
  });
  handler.origin.on('fragmentTrimmed', (e) => {
    if (e.reason === 'error') lost++;
  });
}

const commands = {
  stats() {
    const m = process.memoryUsage();
    const points = handler && handler.origin
      ? handler.origin.points().map((p) => ({ path: p.path, bytes: p.bytes, state: p.state }))
      : [];
    return {
      rss: m.rss,
      heapUsed: m.heapUsed,
      requests,
      edge: handler && handler.stats ? handler.stats() : undefined,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      points,
      held: points.reduce((s, p) => s + p.bytes, 0),
      published,
      publishedBy,
      storedBy,
      io: procIo(),
      rejected,
      lost,
      loop: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    };
  },
  /** The archiver's side: write queue now and its peak, failed `archive` events, `archiver.list()`. */
  archives() {
    const a = handler.origin.archiver;
    return { queue: a.queue, peak: archive.peak, failed: archive.events, list: a.list() };
  },
  /** Resolves when every archive file closed and every manifest is on disk (`archiver.idle()`). */
  async archiveIdle() {
    await handler.origin.archiver.idle();
    return true;
  },
  resetLoop() {
    loop.reset();
    return true;
  },
  gc() {
    if (global.gc) {
      global.gc();
      global.gc();
    }
    return process.memoryUsage().rss;
  },
  logPublishes(msg) {
    publishLog = msg.on ? [] : undefined;
    return true;
  },
  takePublishes() {
    const log = publishLog || [];
    publishLog = [];
    return log;
  },
  measureRenders(msg) {
    measureRenders = msg.point;
    renders.length = 0;
    return true;
  },
  takeRenders() {
    measureRenders = undefined;
    return renders.splice(0);
  },
};

process.on('message', (msg) => {
  // A command may be async: its answer is sent when it settles.
  Promise.resolve()
    .then(() => commands[msg.cmd](msg))
    .catch((err) => ({ error: String(err && err.stack) }))
    .then((result) => process.send({ id: msg.id, result }));
});

/** This process's I/O counters (Linux `/proc/self/io`: `wchar` bytes written by syscalls, `write_bytes` bytes sent to storage), else undefined. */
function procIo() {
  try {
    const text = fs.readFileSync('/proc/self/io', 'utf8');
    const get = (k) => Number((new RegExp(`^${k}: (\\d+)`, 'm').exec(text) || [])[1]);
    return { wchar: get('wchar'), writeBytes: get('write_bytes') };
  } catch {
    return undefined;
  }
}
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0)); // a normal exit writes --cpu-prof profiles

loop.enable();
// The smooth kind also listens on a second port with the middleware as the whole node:http handler (no
// Express), to tell the middleware's own cost from Express's.
const raw = handler ? http.createServer({ requestTimeout: 0, headersTimeout: 10_000, keepAliveTimeout: 30_000 }, counted(handler)) : undefined;
if (raw) raw.maxConnections = 10_000;
server.listen(0, '127.0.0.1', () => {
  if (!raw) return process.send({ port: server.address().port });
  raw.listen(0, '127.0.0.1', () => process.send({ port: server.address().port, rawPort: raw.address().port }));
});
