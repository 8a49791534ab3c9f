/**
 * Publishing point definitions: IIS `.isml` files (SMIL 2.0 with `<meta name content>` settings in
 * `<head>`, protocol doc §5). Unknown metas are ignored; an empty file means "all defaults".
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { SmoothError } from './errors';

/** Settings of one publishing point, as read from its `.isml` over the site-wide defaults. */
export interface PointSettings {
  /** `title`. */
  title: string | undefined;
  /** `lookaheadChunks`: fragments held back and announced in tfrf (0–32). */
  lookaheadChunks: number;
  /** `manifestWindowLength`, seconds: the DVR window; 0 keeps the whole event (within the byte cap). */
  manifestWindowLength: number;
  /** `estimatedTime`, seconds: expected length, written as the manifest `Duration`; 0 = unknown. */
  estimatedTime: number;
  /** `startOnFirstRequest`. Read and reported; refusing encoders while Idle comes with the lifecycle. */
  startOnFirstRequest: boolean;
  /** `restartOnEncoderReconnect`: a new encoder on a Stopped point starts a fresh session. */
  restartOnEncoderReconnect: boolean;
}

/** Largest `lookaheadChunks`: tfrf counts fit a byte, and held-back fragments stay in memory. */
export const MAX_LOOKAHEAD = 32;

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  removeNSPrefix: true,
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (name) => name === 'meta',
});

function bad(message: string): SmoothError {
  return new SmoothError('ERR_BAD_DEFINITION', message);
}

function uint(name: string, value: string, max: number): number {
  if (!/^\s*\d{1,10}\s*$/.test(value) || Number(value) > max) {
    throw bad(`meta ${name}="${value.slice(0, 40)}" is not a whole number between 0 and ${max}`);
  }
  return Number(value);
}

function bool(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw bad(`meta ${name}="${value.slice(0, 40)}" is not true or false`);
}

/**
 * Reads an `.isml` document.
 * @param text - file contents
 * @param defaults - site-wide defaults the file overrides
 * @throws SmoothError ERR_BAD_DEFINITION with the reason
 */
export function readDefinition(text: string, defaults: PointSettings): PointSettings {
  const settings: PointSettings = { ...defaults };
  const body = text.replace(/^\uFEFF/, '');
  if (body.trim() === '') return settings;
  const valid = XMLValidator.validate(body);
  if (valid !== true) throw bad(`not well-formed XML (line ${valid.err.line}): ${valid.err.msg}`);
  const doc = xml.parse(body) as Record<string, unknown>;
  // Exactly one root, <smil>: the validator lets several roots through (the parser then merges them),
  // and an element without children or kept attributes, like `<smil xmlns="…"/>`, parses as ''.
  const roots = Object.keys(doc).filter((k) => !k.startsWith('?'));
  if (roots.length !== 1 || roots[0] !== 'smil' || Array.isArray(doc.smil)) throw bad('root element is not <smil>');
  const smil = doc.smil as { head?: { meta?: { name?: unknown; content?: unknown }[] } | string } | string;
  const head = typeof smil === 'object' && typeof smil.head === 'object' ? smil.head : undefined;
  for (const meta of head?.meta ?? []) {
    if (typeof meta.name !== 'string') continue;
    const content = typeof meta.content === 'string' ? meta.content : '';
    switch (meta.name) {
      case 'title':
        settings.title = content;
        break;
      case 'lookaheadChunks':
        settings.lookaheadChunks = uint(meta.name, content, MAX_LOOKAHEAD);
        break;
      case 'manifestWindowLength':
        settings.manifestWindowLength = uint(meta.name, content, 0xffffffff);
        break;
      case 'estimatedTime':
        settings.estimatedTime = uint(meta.name, content, 0xffffffff);
        break;
      case 'startOnFirstRequest':
        settings.startOnFirstRequest = bool(meta.name, content);
        break;
      case 'restartOnEncoderReconnect':
        settings.restartOnEncoderReconnect = bool(meta.name, content);
        break;
      default:
        break; // other IIS metas (archive, HLS, …) are kept in the file and ignored here
    }
  }
  return settings;
}
