/**
 * Background runs of the real-player tests: started in `beforeAll`, awaited by the tests that judge
 * them, never left as unhandled rejections.
 */

/** A settled background run: its result or its error. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** The run as an {@link Outcome}: it never rejects. */
export function settle<T>(p: Promise<T>): Promise<Outcome<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** The run's result, or its error thrown (in the test that looks at it). */
export async function outcome<T>(p: Promise<Outcome<T>> | undefined): Promise<T> {
  if (!p) throw new Error('the player was not started (see beforeAll)');
  const o = await p;
  if (!o.ok) throw o.error;
  return o.value;
}
