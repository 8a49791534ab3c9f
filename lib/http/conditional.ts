/**
 * Conditional requests, shared by the origin's handlers and the edge.
 */

/**
 * Whether an `If-None-Match` header (RFC 9110 §13.1.2) matches `etag`: `*`, or one of its entity tags
 * compared weakly (`W/` ignored on either side).
 */
export function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header === etag) return true;
  const strip = (t: string): string => (t.startsWith('W/') ? t.slice(2) : t);
  const mine = strip(etag);
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || strip(tag) === mine;
  });
}
