/**
 * A live-smooth server in a process of its own, for tests that kill it (`kill -9`) and start another on
 * the same root: `node -r test/helpers/ts-register.js test/helpers/child-server.ts <root>`. Prints
 * `listening <port>` once it listens; options come as JSON in `LIVE_SMOOTH_OPTIONS`.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { liveSmooth } from '../../lib';

const root = process.argv[2];
if (!root) throw new Error('usage: child-server.ts <root>');
const options = process.env.LIVE_SMOOTH_OPTIONS ? (JSON.parse(process.env.LIVE_SMOOTH_OPTIONS) as object) : {};
const app = express();
app.use('/live', liveSmooth(root, options));
const server = http.createServer({ requestTimeout: 0, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, app);
server.maxConnections = 1000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
