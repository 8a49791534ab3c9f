/**
 * SCTE-35 ad markers of a sparse track as the DASH and HLS outputs show them. Azure's timed-metadata
 * ingest (protocol doc §2.13) puts one message in each fragment's sample:
 *
 *   version u32 | id u32 | presentation_time_delta u32 | splice_info_section()
 *
 * The event is at the fragment's time plus the delta (track timescale), and lasts the fragment's
 * duration (0: unknown). Encoders that put the bare `splice_info_section()` in the sample (it starts
 * with its table_id 0xFC, where Azure's version starts with 0x00) are read too, with no id or delta.
 */

/** `table_id` of a `splice_info_section()` (ANSI/SCTE 35 §9.6). */
const TABLE_ID = 0xfc;
/** `splice_command_type` of `splice_insert()` (§9.7.3). */
const SPLICE_INSERT = 0x05;
/** Bytes of Azure's header before the section. */
const HEADER = 12;
/** table_id, the section syntax flags and section_length: the bytes section_length does not count. */
const SECTION_HEAD = 3;
/** Offset of `splice_command_type` in the section (after pts_adjustment, cw_index, tier, command length). */
const COMMAND_TYPE = 13;

/** What one sample of an SCTE-35 sparse track says. */
export interface MarkerSample {
  /** Azure's message id; `undefined` for a bare section. */
  id: number | undefined;
  /** Ticks after the fragment's time at which the event is. */
  delta: number;
  /** The `splice_info_section()`, exactly `section_length` + 3 bytes. */
  section: Buffer;
}

/**
 * Reads a sample of an SCTE-35 sparse track.
 * @returns `undefined` when it holds no plausible `splice_info_section()` (too short, another table,
 *   a section_length beyond the sample): such a sample is left out of the outputs, not guessed at
 */
export function readMarkerSample(sample: Uint8Array): MarkerSample | undefined {
  const b = Buffer.from(sample.buffer, sample.byteOffset, sample.byteLength);
  let id: number | undefined;
  let delta = 0;
  let section = b;
  if (b[0] !== TABLE_ID) {
    if (b.length < HEADER + SECTION_HEAD) return undefined;
    id = b.readUInt32BE(4);
    delta = b.readUInt32BE(8);
    section = b.subarray(HEADER);
  }
  if (section.length < COMMAND_TYPE + 1 || section[0] !== TABLE_ID) return undefined;
  const length = SECTION_HEAD + (((section[1]! & 0x0f) << 8) | section[2]!);
  if (length > section.length || length < COMMAND_TYPE + 1) return undefined;
  return { id, delta, section: section.subarray(0, length) };
}

/**
 * The HLS `EXT-X-DATERANGE` attribute that carries a section (RFC 8216 §4.3.2.7.1): `SCTE35-OUT` for a
 * `splice_insert()` out of the network (an ad break begins), `SCTE35-IN` for one back into it, and
 * `SCTE35-CMD` for every other command (`time_signal`, a cancelled or encrypted insert, …).
 */
export function spliceAttribute(section: Uint8Array): 'SCTE35-OUT' | 'SCTE35-IN' | 'SCTE35-CMD' {
  // splice_insert(): splice_event_id u32, then splice_event_cancel_indicator (bit 7), then, when not
  // cancelled, out_of_network_indicator (bit 7 of the next byte).
  // An encrypted command (encrypted_packet, bit 7 of byte 4) cannot be read.
  const at = COMMAND_TYPE + 1;
  const insert = (section[4]! & 0x80) === 0 && section[COMMAND_TYPE] === SPLICE_INSERT && section.length >= at + 6;
  if (!insert || (section[at + 4]! & 0x80) !== 0) return 'SCTE35-CMD';
  return (section[at + 5]! & 0x80) !== 0 ? 'SCTE35-OUT' : 'SCTE35-IN';
}
