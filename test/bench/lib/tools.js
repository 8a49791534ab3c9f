'use strict';
/**
 * Plumbing shared by the benchmark sections: servers in child processes, autocannon and wrk runs,
 * an nginx on a private config, ingest POSTs, small HTTP helpers and statistics.
 */
const { fork, spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Seconds per load run (autocannon; wrk runs half as long); `BENCH_SECONDS` overrides. */
const SECONDS = Number(process.env.BENCH_SECONDS || 2);
/** Concurrent connections per load run. */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 32);
/** Rounds per side-by-side comparison (median reported). */
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);

/** Library under test: the built package (`npm run bench` builds it first). */
const DIST = process.env.LIVE_SMOOTH_DIST
  ? path.resolve(process.env.LIVE_SMOOTH_DIST)
  : path.join(__dirname, '..', '..', '..', 'dist');

function tmpDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `live-smooth-bench-${name}-`));
}

/** A `.isml` with the given metas. */
function isml(metas = {}) {
  const head = Object.entries(metas)
    .map(([k, v]) => `    <meta name="${k}" content="${v}" />\n`)
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?>\n<smil xmlns="http://www.w3.org/2001/SMIL20/Language">\n  <head>\n${head}  </head>\n  <body />\n</smil>\n`;
}

/**
 * Starts a server of `kind` (see server.js) in a child process.
 * @returns `{ port, url, call(cmd, args), stop() }`
 */
async function startServer(kind, config = {}, execArgv = []) {
  const child = fork(path.join(__dirname, 'server.js'), [kind, JSON.stringify({ dist: DIST, ...config })], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  let next = 1;
  const { port, rawPort } = await new Promise((ok, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`${kind} server exited with ${code}`)));
    child.on('message', (msg) => {
      if (msg.port) ok(msg);
      else if (msg.id && pending.has(msg.id)) {
        pending.get(msg.id)(msg.result);
        pending.delete(msg.id);
      }
    });
  });
  child.removeAllListeners('exit');
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    rawUrl: rawPort ? `http://127.0.0.1:${rawPort}` : undefined,
    pid: child.pid,
    call(cmd, args = {}) {
      const id = next++;
      return new Promise((ok) => {
        pending.set(id, ok);
        child.send({ id, cmd, ...args });
      });
    },
    stop() {
      return new Promise((ok) => {
        if (child.exitCode !== null) return ok();
        child.once('exit', () => ok());
        child.kill('SIGTERM');
      });
    },
  };
}

/** Path of an executable on PATH, or undefined. */
function which(name) {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * nginx serving `dir` on 127.0.0.1 only, one worker (like the single Node process), from a config in a
 * temp folder. Started and stopped by the benchmark; never touches the system's nginx config.
 */
async function startNginx(dir) {
  const bin = which('nginx') || (fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined);
  if (!bin) return undefined;
  const prefix = tmpDir('nginx');
  const port = await freePort();
  const user = process.getuid && process.getuid() === 0 ? 'user root root;\n' : '';
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(prefix, d));
  const conf = `${user}worker_processes 1;
daemon off;
master_process on;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  open_file_cache max=100;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  types { video/mp4 mp4; application/vnd.ms-sstr+xml xml; }
  server {
    listen 127.0.0.1:${port};
    root ${dir};
  }
}
`;
  const file = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(file, conf);
  const child = spawn(bin, ['-c', file, '-p', prefix, '-e', path.join(prefix, 'error.log')], { stdio: 'ignore' });
  const exited = new Promise((ok) => child.once('exit', ok));
  for (let i = 0; i < 100; i++) {
    if (await reachable(port)) break;
    if (child.exitCode !== null) return undefined;
    await sleep(50);
  }
  const version = execFileSync(bin, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim() || 'nginx';
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    version,
    async stop() {
      if (child.exitCode === null) child.kill('SIGQUIT');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}

function freePort() {
  return new Promise((ok) => {
    const s = require('node:net').createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

function reachable(port) {
  return new Promise((ok) => {
    const s = require('node:net').connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      ok(true);
    });
    s.once('error', () => ok(false));
  });
}

/**
 * One autocannon run against `url` (after a one-second warm-up that is thrown away). With `o.paths`,
 * the requests go to those paths of `url`'s server in turn, shared by all connections.
 * @returns `{ rps, bytesPerSec, p50, p99, errors, non2xx }`
 */
async function cannon(url, o = {}) {
  const autocannon = require('autocannon');
  let next = 0;
  const requests = o.paths && [{ setupRequest: (req) => ({ ...req, path: o.paths[next++ % o.paths.length] }) }];
  const run = (duration) =>
    new Promise((ok, fail) => {
      autocannon(
        { url, connections: o.connections || CONNECTIONS, duration, pipelining: 1, timeout: 10, ...(requests && { requests }) },
        (err, r) => (err ? fail(err) : ok(r)),
      );
    });
  if (o.warm !== false) await run(1);
  const r = await run(o.seconds || SECONDS);
  return {
    rps: r.requests.average,
    bytesPerSec: r.throughput.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

/**
 * Measures `targets` (`[name, url]`) side by side: a warm-up of each, then `rounds` rounds that run
 * every target once in turn, so a disturbance on the machine hits all of them alike. Each target's
 * result is its median round (by req/s).
 */
async function compare(targets, measure, rounds = ROUNDS) {
  if (measure === cannon) for (const [, url] of targets) await cannon(url, { seconds: 1, warm: false });
  const runs = Object.fromEntries(targets.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, url] of targets) {
      const result = await measure(url, { warm: false });
      if (result) runs[name].push(result);
    }
  }
  const out = {};
  for (const [name, list] of Object.entries(runs)) {
    if (list.length === 0) continue;
    list.sort((a, b) => a.rps - b.rps);
    out[name] = { ...list[(list.length - 1) >> 1], rounds: list.map((x) => Math.round(x.rps)) };
  }
  return out;
}

/** Waits until `server` has published at least `n` fragments of `point`. */
async function waitPublished(server, point, n, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const s = await server.call('stats');
    if ((s.publishedBy[point] || 0) >= n) return s;
    if (Date.now() > end) throw new Error(`${point}: ${s.publishedBy[point] || 0} of ${n} fragments published`);
    await sleep(5);
  }
}

/** wrk binary, if installed. */
const WRK = which('wrk');

/**
 * One wrk run (one thread: the server under test gets the other core), or undefined without wrk.
 * `o.script` is a Lua script for `-s` (e.g. one that walks a list of paths).
 * @returns `{ rps, p50, p99 }`
 */
function wrk(url, o = {}) {
  if (!WRK) return Promise.resolve(undefined);
  return new Promise((ok, fail) => {
    const seconds = o.seconds || Math.max(1, Math.round(SECONDS / 2));
    const args = ['-t1', `-c${o.connections || CONNECTIONS}`, `-d${seconds}s`, '--latency', ...(o.script ? ['-s', o.script] : []), url];
    const child = spawn(WRK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', fail);
    child.on('exit', () => {
      const rps = /Requests\/sec:\s*([\d.]+)/.exec(out);
      const ms = (label) => {
        const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
        if (!m) return undefined;
        return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
      };
      const errors = /Non-2xx or 3xx responses:\s*(\d+)/.exec(out);
      ok(
        rps ? { rps: Number(rps[1]), p50: ms('50'), p99: ms('99'), non2xx: errors ? Number(errors[1]) : 0 } : undefined,
      );
    });
  });
}

/** GET with a fresh connection; resolves `{ status, headers, body }`. */
function get(url, agent) {
  return new Promise((ok, fail) => {
    http
      .get(url, { agent }, (res) => {
        const parts = [];
        res.on('data', (c) => parts.push(c));
        res.on('end', () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', fail);
      })
      .on('error', fail);
  });
}

/**
 * An ingest POST that stays open like an encoder's (chunked, no Content-Length).
 * `write(buf)` resolves when the bytes are handed to the socket (after a drain if needed).
 */
function openPush(url) {
  const req = http.request(url, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' }, agent: false });
  let status;
  const response = new Promise((ok) => {
    req.on('response', (res) => {
      status = res.statusCode;
      res.resume();
      res.on('end', () => ok(status));
    });
    req.on('error', () => ok(status ?? 'error'));
  });
  req.flushHeaders();
  return {
    req,
    write(buf) {
      if (req.write(buf)) return Promise.resolve(true);
      return new Promise((ok) => req.once('drain', () => ok(false)));
    },
    end(buf) {
      req.end(buf);
      return response;
    },
    get status() {
      return status;
    },
  };
}

/** Percentile (0–100) of numbers, nearest rank. */
function pct(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function median(values) {
  return pct(values, 50);
}

module.exports = {
  now,
  sleep,
  SECONDS,
  CONNECTIONS,
  DIST,
  tmpDir,
  isml,
  startServer,
  startNginx,
  which,
  cannon,
  compare,
  waitPublished,
  ROUNDS,
  wrk,
  WRK,
  get,
  openPush,
  pct,
  median,
};
