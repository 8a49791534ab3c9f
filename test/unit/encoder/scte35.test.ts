/**
 * The SCTE-35 splice_info_section writer: the MPEG-2 CRC-32, a published splice_insert reproduced byte
 * for byte, each field of a section read back bit by bit, and Azure's sample header.
 */
import { SCTE35_TIMESCALE, crc32Mpeg2, scte35Sample, spliceInsertSection } from '../../../lib/encoder/scte35';

/** Reads bit fields most significant bit first. */
function bits(data: Buffer): (width: number) => bigint {
  let pos = 0;
  return (width) => {
    let v = 0n;
    for (let i = 0; i < width; i++, pos++) v = (v << 1n) | BigInt((data[pos >> 3]! >> (7 - (pos & 7))) & 1);
    return v;
  };
}

/**
 * A splice_insert from the sample messages of ANSI/SCTE 35 (widely used as a parser test vector): event 0x4800008F,
 * out of network, splice time 0x07369C02E, break 0x00052CCF5 with auto return, one avail_descriptor.
 */
const PUBLISHED = Buffer.from('/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=', 'base64');

describe('crc32Mpeg2', () => {
  it('gives the check value of the CRC-32/MPEG-2 catalogue entry', () => {
    expect(crc32Mpeg2(Buffer.from('123456789', 'latin1'))).toBe(0x0376e6e7);
  });

  it('matches the CRC of a published section, and is 0 over a whole section', () => {
    expect(crc32Mpeg2(PUBLISHED.subarray(0, -4))).toBe(PUBLISHED.readUInt32BE(PUBLISHED.length - 4));
    expect(crc32Mpeg2(PUBLISHED)).toBe(0);
  });
});

describe('spliceInsertSection', () => {
  it('reproduces a published splice_insert byte for byte', () => {
    const availDescriptor = Buffer.from('000843554549' + '00000135', 'hex'); // tag 0, length 8, "CUEI", provider_avail_id 0x135
    const section = spliceInsertSection({
      eventId: 0x4800008f,
      pts: 0x07369c02en,
      duration: 0x00052ccf5n,
      autoReturn: true,
      outOfNetwork: true,
      descriptors: [availDescriptor],
    });
    expect(section.toString('hex')).toBe(PUBLISHED.toString('hex'));
  });

  it('writes every field where the standard puts it, with a valid CRC', () => {
    // A PTS beyond 33 bits wraps, as the 90 kHz clock does.
    const pts = (1n << 33n) + 123_456n;
    const duration = 30n * SCTE35_TIMESCALE;
    const section = spliceInsertSection({ eventId: 7, pts, duration, uniqueProgramId: 0x1234, availNum: 1, availsExpected: 2 });
    const read = bits(section);
    expect(read(8)).toBe(0xfcn); // table_id
    expect(read(1)).toBe(0n); // section_syntax_indicator
    expect(read(1)).toBe(0n); // private_indicator
    expect(read(2)).toBe(3n); // sap_type
    expect(Number(read(12))).toBe(section.length - 3); // section_length
    expect(read(8)).toBe(0n); // protocol_version
    expect(read(1)).toBe(0n); // encrypted_packet
    expect(read(6)).toBe(0n); // encryption_algorithm
    expect(read(33)).toBe(0n); // pts_adjustment
    expect(read(8)).toBe(0xffn); // cw_index
    expect(read(12)).toBe(0xfffn); // tier
    const commandLength = Number(read(12));
    expect(read(8)).toBe(5n); // splice_command_type: splice_insert
    expect(read(32)).toBe(7n); // splice_event_id
    expect(read(1)).toBe(0n); // splice_event_cancel_indicator
    expect(read(7)).toBe(0x7fn);
    expect(read(1)).toBe(1n); // out_of_network_indicator
    expect(read(1)).toBe(1n); // program_splice_flag
    expect(read(1)).toBe(1n); // duration_flag
    expect(read(1)).toBe(0n); // splice_immediate_flag
    expect(read(4)).toBe(0xfn);
    expect(read(1)).toBe(1n); // time_specified_flag
    expect(read(6)).toBe(0x3fn);
    expect(read(33)).toBe(123_456n); // pts_time, modulo 2^33
    expect(read(1)).toBe(1n); // auto_return
    expect(read(6)).toBe(0x3fn);
    expect(read(33)).toBe(2_700_000n); // break duration: 30 s at 90 kHz
    expect(read(16)).toBe(0x1234n); // unique_program_id
    expect(read(8)).toBe(1n); // avail_num
    expect(read(8)).toBe(2n); // avails_expected
    expect(commandLength).toBe(4 + 1 + 1 + 5 + 5 + 4);
    expect(read(16)).toBe(0n); // descriptor_loop_length
    expect(Number(read(32))).toBe(crc32Mpeg2(section.subarray(0, -4)));
    expect(section.length).toBe(14 + commandLength + 2 + 4);
  });

  it('writes an immediate splice without duration when neither is given', () => {
    const section = spliceInsertSection({ eventId: 1, outOfNetwork: false });
    const flags = section[14 + 5]!; // after the 14-byte header, the event id and the cancel byte
    expect(flags).toBe(0b0101_1111); // in to the network, program splice, no duration, immediate
    expect(section.length).toBe(14 + 10 + 2 + 4);
    expect(crc32Mpeg2(section)).toBe(0);
  });

  it('refuses fields out of range', () => {
    expect(() => spliceInsertSection({ eventId: -1 })).toThrow(RangeError);
    expect(() => spliceInsertSection({ eventId: 2 ** 32 })).toThrow(RangeError);
    expect(() => spliceInsertSection({ eventId: 1, duration: 1n << 33n })).toThrow(RangeError);
    expect(() => spliceInsertSection({ eventId: 1, availNum: 256 })).toThrow(RangeError);
  });
});

describe('scte35Sample', () => {
  it("is Azure's version 1, id, presentation_time_delta, then the section", () => {
    const section = spliceInsertSection({ eventId: 9, pts: 0n, duration: 90_000n });
    const sample = scte35Sample(9, 0, section);
    expect(sample.readUInt32BE(0)).toBe(1);
    expect(sample.readUInt32BE(4)).toBe(9);
    expect(sample.readUInt32BE(8)).toBe(0);
    expect(sample.subarray(12).equals(section)).toBe(true);
  });
});
