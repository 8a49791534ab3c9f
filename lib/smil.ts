/**
 * The SMIL reader shared by `.isml` definitions and Live Server Manifest boxes.
 */
import { XMLParser } from 'fast-xml-parser';

/**
 * A parser for SMIL documents: attributes kept as plain strings (exact, never turned into numbers),
 * namespace prefixes dropped so `smil:meta` and `meta` read alike, numeric character references
 * (`&#233;`) decoded, and the named elements always read as arrays.
 */
export function smilParser(arrays: readonly string[]): XMLParser {
  return new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    removeNSPrefix: true,
    parseAttributeValue: false,
    parseTagValue: false,
    htmlEntities: true,
    isArray: (name) => arrays.includes(name),
  });
}
