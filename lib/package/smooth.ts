/**
 * The Smooth Streaming fragment response (MS-SSTR 2.2.4, protocol doc §4.2) from a stored fragment:
 * one `moof` with `mfhd` and a single `traf` carrying `tfxd` and, while the stream is live, a `tfrf`
 * with the fragments that follow. The sample bytes are not part of it: they are sent after it as the
 * stored view.
 *
 * Order inside the traf: tfhd, the ingested tfdt (only when the encoder sent one), trun, passthrough
 * boxes (sdtp, PIFF), tfxd, tfrf: no non-uuid box ever follows the tfxd (VLC crashes on that).
 */
import type { FragmentMeta } from '../media';
import type { FragmentTime } from '../model';
import { MoofHead, writeMoof } from '../mp4/writer';

/**
 * Writes the header of a Smooth fragment response.
 * @param f - the stored fragment
 * @param lookahead - the tfrf entries (the next fragments of the track), or `undefined` for no tfrf
 */
export function smoothFragment(f: FragmentMeta, lookahead: readonly FragmentTime[] | undefined): MoofHead {
  return writeMoof({
    sequenceNumber: f.sequenceNumber,
    // Kept as ingested: players build their own moov and patch the track_ID as they need.
    trackId: f.trackId,
    sampleDescriptionIndex: f.sampleDescriptionIndex,
    decodeTime: f.decodeTimeSent ? f.decodeTime : undefined,
    samples: f.samples,
    extra: f.extra,
    tfxd: { time: f.time, duration: f.duration },
    tfrf: lookahead,
    dataSize: f.dataSize,
  });
}
