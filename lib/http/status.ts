/**
 * The one table that maps error codes to HTTP statuses.
 */
import type { SmoothErrorCode } from '../errors';

/** HTTP status for each error code. Client errors expose their message; 5xx messages are ours to write. */
export const STATUS: Readonly<Record<SmoothErrorCode, number>> = {
  ERR_BAD_BOX: 400,
  ERR_BOX_TOO_LARGE: 400,
  ERR_BAD_HEADER: 400,
  ERR_UNKNOWN_CODEC: 400,
  ERR_HEADER_CHANGED: 400,
  ERR_BAD_FRAGMENT: 400,
  ERR_TRUNCATED: 400,
  ERR_BAD_URL: 400,
  ERR_TRAVERSAL: 400,
  ERR_BAD_DEFINITION: 500,
  ERR_POINT_STATE: 409,
  ERR_ENCODER_RESTART: 409,
  ERR_ENCODER_BEHIND: 409,
  ERR_TIME_JUMP: 409,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_TRACK_TAKEN: 409,
  ERR_TOO_MANY_CONNECTIONS: 503,
  ERR_BUDGET_EXCEEDED: 503,
  ERR_BODY_CONSUMED: 500,
  ERR_INGEST_IDLE: 408,
  ERR_UPSTREAM_FAILED: 502,
  ERR_UPSTREAM_TIMEOUT: 504,
  ERR_EDGE_BUSY: 503,
  ERR_INVALID_OPTION: 500,
  ERR_STORE: 500,
  ERR_BAD_UPSTREAM: 502,
};
