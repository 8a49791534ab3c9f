/**
 * Edge caches in front of a live-smooth origin, for the edge tests and the edge benchmark: nginx and
 * Varnish run from the configurations in `examples/edge/` (only the origin address, the listening port
 * and local paths are substituted, so what is tested is what the examples say), and any
 * `(req, res)` handler (such as `liveSmooth.edge`) on a node:http server. Each is an adapter: start it
 * with the origin's address, get its base URL, stop it.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** The example configurations the adapters run. */
export const EXAMPLES = path.join(__dirname, '..', '..', 'examples', 'edge');

/** A running edge: where players reach it, and how to stop it. */
export interface RunningEdge {
  name: string;
  /** e.g. `http://127.0.0.1:41234` (no trailing slash; the origin's paths follow unchanged). */
  url: string;
  /** What the edge logged, for a failing test's message. */
  log(): string;
  stop(): Promise<void>;
}

/** The origin an edge forwards to. */
export interface Upstream {
  host: string;
  port: number;
}

function onPath(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** nginx (Debian installs it in /usr/sbin, which a non-root PATH may lack). */
export function nginxPath(): string | undefined {
  return onPath('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined);
}

export function varnishdPath(): string | undefined {
  return onPath('varnishd') ?? (existsSync('/usr/sbin/varnishd') ? '/usr/sbin/varnishd' : undefined);
}

/** `text` with the one occurrence of `from` replaced; an example that lost the line fails loudly. */
function substitute(text: string, from: string, to: string, file: string): string {
  const at = text.indexOf(from);
  if (at === -1 || text.indexOf(from, at + 1) !== -1) throw new Error(`${file}: expected exactly one "${from}"`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** Options of the example configurations. */
export interface EdgeConfigOptions {
  /** Take the examples' alternative: encoders' POSTs pass through the edge to the origin. */
  passIngest?: boolean;
}

/** examples/edge/nginx.conf (an http-context file) for `origin`, listening on 127.0.0.1:`port`, its cache under `prefix`. */
export function nginxSite(origin: Upstream, port: number, prefix: string, o: EdgeConfigOptions = {}): string {
  const file = 'examples/edge/nginx.conf';
  let text = readFileSync(path.join(EXAMPLES, 'nginx.conf'), 'utf8');
  text = substitute(text, 'server 192.0.2.10:3000;', `server ${origin.host}:${origin.port};`, file);
  text = substitute(text, 'listen 80;', `listen 127.0.0.1:${port};`, file);
  text = substitute(text, '/var/cache/nginx/live-smooth', path.join(prefix, 'cache'), file);
  if (o.passIngest) {
    // The commented-out ingest location, as a reader would uncomment it.
    const block = /^ {4}# location ~\* \\\.isml\/[^\n]*\n(?: {4}#[^\n]*\n)*? {4}# \}\n/m.exec(text);
    if (!block) throw new Error(`${file}: the commented-out ingest location is missing`);
    text = text.replace(block[0], block[0].replace(/^ {4}# /gm, '    '));
  }
  return text;
}

/**
 * The main configuration around {@link nginxSite}, as Debian's nginx.conf includes a conf.d file, with
 * every path in `prefix` (nothing of the system's nginx is read or written).
 */
export function nginxConfig(origin: Upstream, port: number, prefix: string, workers = 1, o: EdgeConfigOptions = {}): string {
  const user = process.getuid?.() === 0 ? 'user root root;\n' : '';
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((d) => `  ${d}_temp_path ${path.join(prefix, d)};`).join('\n');
  return `${user}worker_processes ${workers};
pid ${path.join(prefix, 'nginx.pid')};
error_log ${path.join(prefix, 'error.log')} warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
${temp}
${nginxSite(origin, port, prefix, o)}
}
`;
}

/** examples/edge/varnish.vcl for `origin`. */
export function varnishVcl(origin: Upstream, o: EdgeConfigOptions = {}): string {
  const file = 'examples/edge/varnish.vcl';
  let text = readFileSync(path.join(EXAMPLES, 'varnish.vcl'), 'utf8');
  text = substitute(text, '.host = "192.0.2.10";', `.host = "${origin.host}";`, file);
  text = substitute(text, '.port = "3000";', `.port = "${origin.port}";`, file);
  // What the file's closing comment says to do for ingest through the edge.
  if (o.passIngest) text = substitute(text, 'return (synth(403, "Encoders push to the origin"));', 'return (pipe);', file);
  return text;
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => ok(port));
    });
  });
}

/** Resolves once a GET of `/` gets any answer (the edge is serving), or rejects when `child` exits or 20 s pass. */
async function ready(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}):\n${log()}`);
    const answered = await new Promise<boolean>((ok) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000 }, (res) => {
        res.resume();
        ok(true);
      });
      req.on('error', () => ok(false));
      req.on('timeout', () => req.destroy());
    });
    if (answered) return;
    if (Date.now() > end) throw new Error(`not answering on port ${port} after 20 s:\n${log()}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/** Spawns `bin`; stdout and stderr are kept for {@link RunningEdge.log}. */
function run(bin: string, args: string[]): { child: ChildProcess; log: () => string; exited: Promise<void> } {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  child.once('error', (err) => keep(Buffer.from(String(err))));
  return { child, log: () => out, exited };
}

/** Signals `child` and waits for it; SIGKILL after 5 s. */
async function terminate(child: ChildProcess, exited: Promise<void>, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** nginx from examples/edge/nginx.conf, in the foreground, with its own prefix, pid file and cache. */
export async function startNginx(origin: Upstream, o: EdgeConfigOptions & { workers?: number; bin?: string } = {}): Promise<RunningEdge> {
  const bin = o.bin ?? nginxPath();
  if (!bin) throw new Error('nginx not found');
  const prefix = mkdtempSync(path.join(tmpdir(), 'live-smooth-edge-nginx-'));
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'cache']) mkdirSync(path.join(prefix, d));
  const port = await freePort();
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(conf, nginxConfig(origin, port, prefix, o.workers, o));
  // -e: the error log before the configuration is read (else the compiled-in system path).
  const p = run(bin, ['-c', conf, '-p', `${prefix}/`, '-e', path.join(prefix, 'error.log'), '-g', 'daemon off;']);
  const log = (): string => {
    let text = p.log();
    try {
      text += readFileSync(path.join(prefix, 'error.log'), 'utf8').slice(-20_000);
    } catch {
      // not written yet
    }
    return text;
  };
  const stop = async (): Promise<void> => {
    await terminate(p.child, p.exited, 'SIGTERM');
    rmSync(prefix, { recursive: true, force: true });
  };
  try {
    await ready(port, p.child, log);
  } catch (err) {
    await stop();
    throw new Error(`nginx: ${(err as Error).message}`);
  }
  return { name: 'nginx', url: `http://127.0.0.1:${port}`, log, stop };
}

/**
 * varnishd from examples/edge/varnish.vcl, in the foreground (`-F`) with its own working directory
 * (`-n`), no management port (`-T none`) and, since tests may run as root, no privilege separation
 * (`-j none`: otherwise it drops to the `varnish` user, which cannot read a private temp folder).
 */
export async function startVarnish(origin: Upstream, o: EdgeConfigOptions & { bin?: string; storage?: string } = {}): Promise<RunningEdge> {
  const bin = o.bin ?? varnishdPath();
  if (!bin) throw new Error('varnishd not found');
  const dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-edge-varnish-'));
  const port = await freePort();
  const vcl = path.join(dir, 'edge.vcl');
  writeFileSync(vcl, varnishVcl(origin, o));
  const p = run(bin, [
    '-F', '-n', path.join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-f', vcl, '-s', o.storage ?? 'malloc,256m',
    '-j', 'none', '-T', 'none',
    // The shared-memory log would take 80 MB of the temp folder.
    '-p', 'vsl_space=16M',
  ]);
  const stop = async (): Promise<void> => {
    await terminate(p.child, p.exited, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await ready(port, p.child, p.log);
  } catch (err) {
    await stop();
    throw new Error(`varnishd: ${(err as Error).message}`);
  }
  return { name: 'varnish', url: `http://127.0.0.1:${port}`, log: p.log, stop };
}

/**
 * A `(req, res)` handler (an edge such as `liveSmooth.edge`, or an Express app mounting one) as a
 * node:http server on a loopback port; `close` releases what the handler holds.
 */
export async function startHandler(name: string, listener: http.RequestListener, close?: () => void): Promise<RunningEdge> {
  const server = http.createServer({ headersTimeout: 10_000, keepAliveTimeout: 5_000 }, listener);
  server.maxConnections = 1000;
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    log: () => '',
    async stop() {
      close?.();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
