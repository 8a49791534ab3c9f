/**
 * What a call throws, for tests of refusals: it must be a `SmoothError` (anything else fails the test).
 */
import { SmoothError } from '../../lib/errors';

/** The SmoothError `fn` throws; the test fails if it throws something else or nothing. */
export function smoothErrorOf(fn: () => unknown): SmoothError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SmoothError);
    return err as SmoothError;
  }
  throw new Error('did not throw');
}

/** The code of the SmoothError `fn` throws, or `undefined` when it throws nothing. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SmoothError);
    return (err as SmoothError).code;
  }
  return undefined;
}
