/**
 * The management API's `/events` stream with a client that stops reading: its queued frames are
 * bounded (1 MiB), then it is dropped, and its slot is free again. Driven with a stand-in response
 * whose write queue the test sets, and Jest's clock for the stats interval.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { admin, createOrigin } from '../../../lib';

/** What the handler uses of a response, with a write queue the test controls. */
class StandInResponse extends EventEmitter {
  writableLength = 0;
  destroyed = false;
  status = 0;
  readonly frames: string[] = [];
  writeHead(status: number): this {
    this.status = status;
    return this;
  }
  setHeader(): void {}
  write(frame: string): boolean {
    this.frames.push(frame);
    return true;
  }
  end(): void {}
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

function request(): IncomingMessage {
  return Object.assign(new EventEmitter(), { method: 'GET', url: '/events', headers: {} }) as unknown as IncomingMessage;
}

describe('/events with a client that does not read', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-events-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  afterEach(() => jest.useRealTimers());

  it('is dropped once 1 MiB of frames wait for it, and its slot is free again', () => {
    jest.useFakeTimers();
    const origin = createOrigin(root, { stateFile: false });
    const handle = admin(origin, { statsInterval: 50, maxEventClients: 1 });
    const req = request();
    const res = new StandInResponse();
    req.on('close', () => undefined);
    res.on('close', () => req.emit('close'));
    handle(req, res as unknown as ServerResponse);
    expect(res.status).toBe(200);
    jest.advanceTimersByTime(50);
    const sent = res.frames.length;
    expect(sent).toBeGreaterThan(1);
    // The client stopped reading: what it has not taken piles up in the response's queue.
    res.writableLength = 1024 * 1024 + 1;
    jest.advanceTimersByTime(50);
    expect(res.destroyed).toBe(true);
    expect(res.frames.length).toBe(sent);
    // The one client slot is free again.
    const next = new StandInResponse();
    handle(request(), next as unknown as ServerResponse);
    expect(next.status).toBe(200);
    origin.close();
  });
});
