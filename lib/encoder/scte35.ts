/**
 * SCTE-35 splice messages as the simulated encoder's ad markers carry them: a binary
 * `splice_info_section()` with one `splice_insert()` (ANSI/SCTE 35 §9.6, §9.7.3), unencrypted, with the
 * MPEG-2 CRC-32 that ends every section. Azure's timed-metadata ingest puts exactly these bytes after a
 * small header in a sparse track's `mdat` (protocol doc §2.13).
 *
 * Layout written (bits, most significant first):
 *
 *   table_id 8 = 0xFC | section_syntax_indicator 1 = 0 | private_indicator 1 = 0 | sap_type 2 = 3
 *   | section_length 12 | protocol_version 8 = 0 | encrypted_packet 1 = 0 | encryption_algorithm 6 = 0
 *   | pts_adjustment 33 = 0 | cw_index 8 = 0xFF | tier 12 = 0xFFF | splice_command_length 12
 *   | splice_command_type 8 = 5 | splice_insert() | descriptor_loop_length 16 | descriptors | CRC_32 32
 *
 *   splice_insert: splice_event_id 32 | cancel 1 = 0 | reserved 7 | out_of_network 1 | program_splice 1 = 1
 *   | duration_flag 1 | splice_immediate 1 | reserved 4 | [splice_time: time_specified 1 = 1, reserved 6,
 *   pts_time 33] | [break_duration: auto_return 1, reserved 6, duration 33] | unique_program_id 16
 *   | avail_num 8 | avails_expected 8
 *
 * Reserved bits are ones, as the standard asks. `sap_type` 3 ("not specified") is what sections from
 * before the field existed carry in those two reserved bits, so old and new parsers agree.
 */

/** Ticks per second of SCTE-35 times (`pts_time`, `break_duration`): the MPEG-2 90 kHz clock. */
export const SCTE35_TIMESCALE = 90_000n;

/** `splice_command_type` of `splice_insert()`. */
const SPLICE_INSERT = 0x05;
const PTS_MASK = (1n << 33n) - 1n;

/** What one `splice_insert()` says. */
export interface SpliceInsert {
  /** `splice_event_id` (u32): the same id for updates of one event. */
  eventId: number;
  /**
   * Splice point as a 90 kHz presentation time (taken modulo 2^33, as PTS wraps). Absent: a
   * `splice_immediate` splice.
   */
  pts?: bigint;
  /** Break length in 90 kHz ticks (33 bits); absent: no `break_duration()` (duration_flag 0). */
  duration?: bigint;
  /** `auto_return`: the splicer returns to the network at the end of the break. Default true. */
  autoReturn?: boolean;
  /** `out_of_network_indicator`: true (default) leaves the network feed (a break starts), false returns to it. */
  outOfNetwork?: boolean;
  /** `unique_program_id` (u16). Default 0. */
  uniqueProgramId?: number;
  /** `avail_num` (u8). Default 0. */
  availNum?: number;
  /** `avails_expected` (u8). Default 0. */
  availsExpected?: number;
  /** Complete `splice_descriptor()`s (tag, length, body), written in the descriptor loop. Default none. */
  descriptors?: readonly Buffer[];
}

/** The CRC-32 table of polynomial 0x04C11DB7, most significant bit first (no reflection). */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/**
 * The MPEG-2 CRC-32 (ISO/IEC 13818-1 Annex A: polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no
 * reflection, no final XOR) of `data`. Over a whole section including its CRC field it is 0.
 */
export function crc32Mpeg2(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]!) >>> 0;
  return crc >>> 0;
}

/** Writes bit fields most significant bit first. */
class BitWriter {
  readonly #bytes: number[] = [];
  #acc = 0;
  #bits = 0;

  /** Appends the low `width` bits of `value` (up to 33 bits: a bigint beyond 32). */
  put(width: number, value: number | bigint): void {
    const v = BigInt(value);
    for (let i = width - 1; i >= 0; i--) {
      this.#acc = (this.#acc << 1) | Number((v >> BigInt(i)) & 1n);
      if (++this.#bits === 8) {
        this.#bytes.push(this.#acc);
        this.#acc = 0;
        this.#bits = 0;
      }
    }
  }

  /** The bytes written; callers write whole bytes only. */
  bytes(): Buffer {
    if (this.#bits !== 0) throw new Error('bit fields do not end on a byte boundary');
    return Buffer.from(this.#bytes);
  }
}

function checkRange(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${name} must be an integer 0…${max}`);
}

/** The `splice_insert()` command bytes. */
function spliceInsertCommand(s: SpliceInsert): Buffer {
  checkRange('eventId', s.eventId, 0xffffffff);
  checkRange('uniqueProgramId', s.uniqueProgramId ?? 0, 0xffff);
  checkRange('availNum', s.availNum ?? 0, 0xff);
  checkRange('availsExpected', s.availsExpected ?? 0, 0xff);
  if (s.duration !== undefined && (s.duration < 0n || s.duration > PTS_MASK)) throw new RangeError('duration must fit 33 bits');
  const w = new BitWriter();
  w.put(32, s.eventId);
  w.put(1, 0); // splice_event_cancel_indicator
  w.put(7, 0x7f);
  w.put(1, (s.outOfNetwork ?? true) ? 1 : 0);
  w.put(1, 1); // program_splice_flag: the whole program, no component list
  w.put(1, s.duration !== undefined ? 1 : 0);
  w.put(1, s.pts === undefined ? 1 : 0); // splice_immediate_flag
  w.put(4, 0xf);
  if (s.pts !== undefined) {
    w.put(1, 1); // time_specified_flag
    w.put(6, 0x3f);
    w.put(33, ((s.pts % (PTS_MASK + 1n)) + (PTS_MASK + 1n)) & PTS_MASK);
  }
  if (s.duration !== undefined) {
    w.put(1, (s.autoReturn ?? true) ? 1 : 0);
    w.put(6, 0x3f);
    w.put(33, s.duration);
  }
  w.put(16, s.uniqueProgramId ?? 0);
  w.put(8, s.availNum ?? 0);
  w.put(8, s.availsExpected ?? 0);
  return w.bytes();
}

/**
 * A complete `splice_info_section()` carrying one `splice_insert()`, CRC included.
 * @throws RangeError for a field out of its range
 */
export function spliceInsertSection(s: SpliceInsert): Buffer {
  const command = spliceInsertCommand(s);
  const descriptors = Buffer.concat(s.descriptors ?? []);
  if (descriptors.length > 0xffff) throw new RangeError('descriptors exceed the 16-bit descriptor loop');
  // section_length counts everything after its own field: 11 header bytes, the command, the loop, the CRC.
  const sectionLength = 11 + command.length + 2 + descriptors.length + 4;
  if (sectionLength > 4093) throw new RangeError('a splice_info_section is at most 4096 bytes');
  const w = new BitWriter();
  w.put(8, 0xfc); // table_id
  w.put(1, 0); // section_syntax_indicator
  w.put(1, 0); // private_indicator
  w.put(2, 3); // sap_type: not specified
  w.put(12, sectionLength);
  w.put(8, 0); // protocol_version
  w.put(1, 0); // encrypted_packet
  w.put(6, 0); // encryption_algorithm
  w.put(33, 0); // pts_adjustment: pts_time is already on the program's clock
  w.put(8, 0xff); // cw_index: unused without encryption
  w.put(12, 0xfff); // tier: every tier
  w.put(12, command.length);
  w.put(8, SPLICE_INSERT);
  const head = w.bytes();
  const loop = Buffer.alloc(2);
  loop.writeUInt16BE(descriptors.length);
  const body = Buffer.concat([head, command, loop, descriptors]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32Mpeg2(body));
  return Buffer.concat([body, crc]);
}

/**
 * A sample of Azure's SCTE-35 sparse track (timed-metadata spec §2.2.3): `version u32 = 1`, `id u32`,
 * `presentation_time_delta u32` (event time minus the fragment's tfxd time, track timescale), then the
 * binary `splice_info_section()`, not base64.
 */
export function scte35Sample(id: number, presentationTimeDelta: number, section: Buffer): Buffer {
  checkRange('id', id, 0xffffffff);
  checkRange('presentationTimeDelta', presentationTimeDelta, 0xffffffff);
  const head = Buffer.alloc(12);
  head.writeUInt32BE(1, 0);
  head.writeUInt32BE(id, 4);
  head.writeUInt32BE(presentationTimeDelta, 8);
  return Buffer.concat([head, section]);
}
