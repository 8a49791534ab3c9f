/**
 * The publishing-point lifecycle as one table: for every state and every command or event, the states
 * the point passes through, or why it refuses (protocol doc §5.3). Pure: the point carries out the
 * effects of the step it is given (disconnect encoders, publish the held-back tail, drop the window).
 */
import type { PointState } from './events';

/** Commands of the management API. */
export type PointCommand = 'start' | 'stop' | 'shutdown';

/** Events that move a point without a command. */
export type PointEvent =
  /** An encoder's header was accepted (an Idle point starts only with `startOnFirstRequest`). */
  | 'encoder'
  /** A client asked for the manifest or a fragment. */
  | 'request'
  /** The first fragment arrived. */
  | 'fragment'
  /** Every ingest stream sent end of stream. */
  | 'endOfStream'
  /** Every encoder disconnected and none came back within `sourceLostTimeout`. */
  | 'sourceLost';

/** Settings and facts the table's conditions read. */
export interface LifecycleContext {
  startOnFirstRequest: boolean;
  restartOnEncoderReconnect: boolean;
  /** Why the point is in Error. */
  error: string | undefined;
}

/**
 * The effect of a step:
 * - `start`: → Starting;
 * - `started`: → Started;
 * - `stop`: → Stopping → Stopped (encoders go, the held-back tail is published, the window stays);
 * - `shutdown`: → ShuttingDown → Idle, or Error while the definition is broken (the window is dropped);
 * - `restart`: a shutdown, then a start (a new encoder on a Stopped point with `restartOnEncoderReconnect`).
 */
export type Effect = 'start' | 'started' | 'stop' | 'shutdown' | 'restart';

/** What the table says: do `effect`, do nothing (`none`), or refuse with a reason. */
export type Step = { effect: Effect } | { none: true } | { refuse: string };

type Rule = Step | ((c: LifecycleContext) => Step);

const go = (effect: Effect): Step => ({ effect });
const none: Step = { none: true };
const refuse = (why: string): Step => ({ refuse: why });

const TRANSIENT: Record<PointCommand | PointEvent, Rule> = {
  start: refuse('it is already started'),
  stop: refuse('it is not started'),
  shutdown: refuse('there is nothing to shut down'),
  encoder: refuse('try again in a moment'),
  request: none,
  fragment: none,
  endOfStream: none,
  sourceLost: none,
};

const TABLE: Record<PointState, Record<PointCommand | PointEvent, Rule>> = {
  Idle: {
    start: go('start'),
    stop: refuse('it is not started'),
    shutdown: refuse('there is nothing to shut down'),
    encoder: (c) => (c.startOnFirstRequest ? go('start') : refuse('start it, or set startOnFirstRequest')),
    request: (c) => (c.startOnFirstRequest ? go('start') : none),
    fragment: none,
    endOfStream: none,
    sourceLost: none,
  },
  Starting: {
    start: refuse('it is already started'),
    stop: go('stop'),
    shutdown: go('shutdown'),
    encoder: none,
    request: none,
    fragment: go('started'),
    endOfStream: go('stop'),
    sourceLost: go('stop'),
  },
  Started: {
    start: refuse('it is already started'),
    stop: go('stop'),
    shutdown: go('shutdown'),
    encoder: none,
    request: none,
    fragment: none,
    endOfStream: go('stop'),
    sourceLost: go('stop'),
  },
  // Transient: a point passes through them within one step, and refuses everything on the way.
  Stopping: TRANSIENT,
  Stopped: {
    start: refuse('shut it down first'),
    stop: refuse('it is already stopped'),
    shutdown: go('shutdown'),
    encoder: (c) => (c.restartOnEncoderReconnect ? go('restart') : refuse('shut it down first, or set restartOnEncoderReconnect')),
    request: none,
    fragment: none,
    endOfStream: none,
    sourceLost: none,
  },
  ShuttingDown: TRANSIENT,
  Error: {
    start: refuse('shut it down first'),
    stop: refuse('it is not started'),
    shutdown: go('shutdown'),
    encoder: (c) => refuse(c.error ?? 'error'),
    request: none,
    fragment: none,
    endOfStream: none,
    sourceLost: none,
  },
};

/** The step the table gives for `input` in `state`. */
export function step(state: PointState, input: PointCommand | PointEvent, context: LifecycleContext): Step {
  const rule = TABLE[state][input];
  return typeof rule === 'function' ? rule(context) : rule;
}

/** The message of a refused command, as the management API returns it. */
export function refusedCommand(command: PointCommand, state: PointState, why: string): string {
  return `cannot ${command} a publishing point that is ${state}: ${why}`;
}

/** The message of a refused encoder. */
export function refusedEncoder(state: PointState, why: string): string {
  return `publishing point is ${state}: ${why}`;
}
