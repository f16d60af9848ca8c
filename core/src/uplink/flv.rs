//! FLV tag bodies, as RTMP carries them, from the encoders' output: H.264 in AVC form (length-
//! prefixed NAL units, `codec_data` an AVCDecoderConfigurationRecord) and raw AAC (one frame per
//! buffer, `codec_data` an AudioSpecificConfig). No muxer element is involved.

use bytes::{BufMut, Bytes, BytesMut};

/// FLV's codec id for AVC (H.264).
pub(crate) const VIDEO_CODEC_AVC: u32 = 7;
/// FLV's codec id for AAC.
pub(crate) const AUDIO_CODEC_AAC: u32 = 10;

/// The first byte of every AAC audio tag: AAC, "44 kHz", 16-bit, "stereo"; FLV requires these
/// values for AAC, and the real ones are in the AudioSpecificConfig.
const AAC_TAG_HEADER: u8 = 0xAF;

/// A video tag body: frame type and codec, AVC packet type, composition time, payload.
fn video_tag(keyframe: bool, packet_type: u8, composition_ms: i32, payload: &[u8]) -> Bytes {
    let mut tag = BytesMut::with_capacity(5 + payload.len());
    let frame_type: u8 = if keyframe { 1 } else { 2 };
    tag.put_u8(frame_type << 4 | VIDEO_CODEC_AVC as u8);
    tag.put_u8(packet_type);
    // A signed 24-bit composition time offset.
    let cts = composition_ms.clamp(-(1 << 23), (1 << 23) - 1);
    tag.put_slice(&cts.to_be_bytes()[1..]);
    tag.put_slice(payload);
    tag.freeze()
}

/// The AVC sequence header from the stream's AVCDecoderConfigurationRecord.
pub(crate) fn avc_sequence_header(avcc: &[u8]) -> Bytes {
    video_tag(true, 0, 0, avcc)
}

/// One access unit (length-prefixed NAL units) shown `composition_ms` after it is decoded.
pub(crate) fn avc_frame(keyframe: bool, composition_ms: i32, access_unit: &[u8]) -> Bytes {
    video_tag(keyframe, 1, composition_ms, access_unit)
}

/// The AAC sequence header from the stream's AudioSpecificConfig.
pub(crate) fn aac_sequence_header(config: &[u8]) -> Bytes {
    audio_tag(0, config)
}

/// One raw AAC frame.
pub(crate) fn aac_frame(frame: &[u8]) -> Bytes {
    audio_tag(1, frame)
}

fn audio_tag(packet_type: u8, payload: &[u8]) -> Bytes {
    let mut tag = BytesMut::with_capacity(2 + payload.len());
    tag.put_u8(AAC_TAG_HEADER);
    tag.put_u8(packet_type);
    tag.put_slice(payload);
    tag.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_tags_carry_frame_type_packet_type_and_composition_time() {
        let header = avc_sequence_header(&[1, 0x42, 0, 0x1e]);
        assert_eq!(&header[..], &[0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1e]);
        let key = avc_frame(true, 66, &[0, 0, 0, 1, 0x65]);
        assert_eq!(&key[..], &[0x17, 1, 0, 0, 66, 0, 0, 0, 1, 0x65]);
        let delta = avc_frame(false, -1, &[9]);
        assert_eq!(&delta[..], &[0x27, 1, 0xff, 0xff, 0xff, 9]);
    }

    #[test]
    fn audio_tags_are_aac_with_their_packet_type() {
        assert_eq!(
            &aac_sequence_header(&[0x12, 0x08])[..],
            &[0xAF, 0, 0x12, 0x08]
        );
        assert_eq!(&aac_frame(&[1, 2, 3])[..], &[0xAF, 1, 1, 2, 3]);
    }
}
