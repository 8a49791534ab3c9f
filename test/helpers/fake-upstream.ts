/**
 * A fake origin for the edge cache's tests: a node:http server on 127.0.0.1:0 that answers by route
 * and counts every request it gets (path, conditional headers), so tests can assert how many upstream
 * requests the edge made. Also an edge server around a handler, and a fake clock.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the fake upstream received. */
export interface Received {
  path: string;
  method: string;
  ifNoneMatch: string | undefined;
  headers: http.IncomingHttpHeaders;
}

export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface FakeUpstream {
  /** `http://127.0.0.1:<port>` */
  url: string;
  server: http.Server;
  received: Received[];
  /** Requests received for `path` (all when omitted). */
  count(path?: string): number;
  /** Answers `path` (path and query, exactly) with `route`; other paths get 404 `no-store`. */
  route(path: string, route: Route): void;
  /** Closes the server and every connection to it. */
  close(): Promise<void>;
}

export async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function fakeUpstream(): Promise<FakeUpstream> {
  const routes = new Map<string, Route>();
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    const inm = req.headers['if-none-match'];
    received.push({ path, method: req.method ?? 'GET', ifNoneMatch: typeof inm === 'string' ? inm : undefined, headers: req.headers });
    const route = routes.get(path);
    if (route) return route(req, res);
    res.writeHead(404, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
    res.end('not found\n');
  });
  const url = await listen(server);
  return {
    url,
    server,
    received,
    count: (path) => (path === undefined ? received.length : received.filter((r) => r.path === path).length),
    route: (path, route) => void routes.set(path, route),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** A route answering 200 with `body` and `headers` (Content-Length added). */
export function answer(body: string | Buffer, headers: Record<string, string> = {}, status = 200): Route {
  return (_req, res) => {
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { 'Content-Length': String(data.length), ...headers });
    res.end(data);
  };
}

/** A server around a request listener (the edge), on 127.0.0.1:0. */
export async function serve(listener: http.RequestListener): Promise<{ url: string; server: http.Server; close(): Promise<void> }> {
  const server = http.createServer({ headersTimeout: 10_000, keepAliveTimeout: 5_000 }, listener);
  const url = await listen(server);
  return {
    url,
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** A clock the test moves; starts far from 0 (lru-cache reads a start time of 0 as "no TTL"). */
export function fakeClock(start = 1_700_000_000_000): { now(): number; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => void (t += ms),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));
