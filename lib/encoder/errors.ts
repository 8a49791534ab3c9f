/**
 * Errors of the simulated encoder (defined beside the server's: reading Smooth files raises them too).
 */
export { EncoderError } from '../errors';
export type { EncoderErrorCode } from '../errors';
