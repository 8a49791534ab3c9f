/**
 * Minimal XML writing: attribute escaping for strings that come from encoders or files.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes a value for use inside a double-quoted XML attribute (also drops characters XML forbids). */
export function escapeAttr(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Renders ` name="value"` pairs, skipping `undefined` values. */
export function attrs(pairs: ReadonlyArray<readonly [string, string | number | bigint | undefined]>): string {
  let out = '';
  for (const [name, value] of pairs) {
    if (value === undefined) continue;
    out += ` ${name}="${typeof value === 'string' ? escapeAttr(value) : String(value)}"`;
  }
  return out;
}
