/**
 * A real HTTP server around the middleware for integration tests: an Express app on a loopback port,
 * created with `requestTimeout: 0` as the README requires.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { LiveSmoothHandler, LiveSmoothOptions, liveSmooth } from '../../lib';

export interface TestServer {
  /** e.g. `http://127.0.0.1:41234/live` */
  base: string;
  root: string;
  handler: LiveSmoothHandler;
  server: http.Server;
  /** Writes `root/<rel>` (an `.isml`), creating folders. */
  define(rel: string, metas?: Record<string, string>): void;
  /** Stops the server; the root folder is removed unless `keepRoot` (a "process restart" on the same root). */
  close(keepRoot?: boolean): Promise<void>;
  /**
   * Goes away as a crashed host does: the listener and every connection at once (an encoder's POST,
   * keep-alive sockets, requests in flight), before the origin could answer anything else.
   */
  crash(): Promise<void>;
}

/**
 * An HTTP server set up as the README recommends for live ingest: no request timeout (an ingest POST
 * lasts the whole event), but headers, keep-alive and connection count bounded.
 */
export function liveServer(listener: http.RequestListener): http.Server {
  const server = http.createServer({ requestTimeout: 0, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, listener);
  server.maxConnections = 1000;
  return server;
}

/** A minimal `.isml` with the given metas. */
export function isml(metas: Record<string, string> = {}): string {
  const head = Object.entries(metas)
    .map(([name, content]) => `    <meta name="${name}" content="${content}" />\n`)
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?>
<smil xmlns="http://www.w3.org/2001/SMIL20/Language">
  <head>
${head}  </head>
  <body />
</smil>
`;
}

/** Starts an Express app with `liveSmooth(root)` mounted at `/live`; `reuse` names an existing root (a restart). */
export async function startServer(options: LiveSmoothOptions = {}, mount = '/live', reuse?: string): Promise<TestServer> {
  const root = reuse ?? mkdtempSync(path.join(tmpdir(), 'live-smooth-'));
  const handler = liveSmooth(root, options);
  const app = express();
  app.use(mount, handler);
  const server = liveServer(app);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}${mount === '/' ? '' : mount}`,
    root,
    handler,
    server,
    define(rel, metas) {
      const file = path.join(root, rel);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, isml(metas));
    },
    async crash() {
      const closing = new Promise<void>((ok) => server.close(() => ok()));
      server.closeAllConnections();
      await closing;
      handler.origin.close();
    },
    async close(keepRoot = false) {
      handler.origin.close();
      // The archives finish writing before their folder may go.
      await handler.origin.archiver.idle();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      if (!keepRoot) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A pulled point's definition: `sourceType=Pull`, started by its first request, the upstreams in `<body>`. */
export function definePull(server: TestServer, rel: string, sources: string[]): void {
  const refs = sources.map((s) => `      <ref src="${s}" />`).join('\n');
  writeFileSync(
    path.join(server.root, rel),
    `<?xml version="1.0" encoding="utf-8"?>
<smil xmlns="http://www.w3.org/2001/SMIL20/Language">
  <head>
    <meta name="sourceType" content="Pull" />
    <meta name="startOnFirstRequest" content="true" />
  </head>
  <body>
    <par>
${refs}
    </par>
  </body>
</smil>
`,
  );
}
