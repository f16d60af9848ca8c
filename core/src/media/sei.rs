//! H.264 SEI `user_data_unregistered` messages (payload type 5): the FieldCast UUID followed by
//! compact JSON, built into and found in length-prefixed (AVC) access units.

/// The UUID that marks FieldCast messages among other user data.
pub const FIELDCAST_UUID: [u8; 16] = [
    0xf1, 0xe1, 0xdc, 0xa5, 0x70, 0x00, 0x4a, 0x11, 0x9e, 0x5e, 0x0f, 0x1e, 0x1d, 0xca, 0x57, 0xed,
];
/// Largest JSON payload carried in one message (ingest vendors allow 1-4 KiB).
pub const MAX_JSON: usize = 1024;

const NAL_SEI: u8 = 6;
const NAL_AUD: u8 = 9;
const PAYLOAD_USER_DATA_UNREGISTERED: u8 = 5;

/// The SEI NAL unit (header included, no length prefix) carrying `json`.
pub fn build_nal(json: &[u8]) -> Vec<u8> {
    let size = FIELDCAST_UUID.len() + json.len();
    let mut rbsp = vec![PAYLOAD_USER_DATA_UNREGISTERED];
    rbsp.extend(std::iter::repeat_n(0xff, size / 255));
    rbsp.push((size % 255) as u8);
    rbsp.extend_from_slice(&FIELDCAST_UUID);
    rbsp.extend_from_slice(json);
    rbsp.push(0x80); // rbsp_trailing_bits
    let mut nal = vec![NAL_SEI];
    let mut zeros = 0;
    for byte in rbsp {
        if zeros >= 2 && byte <= 3 {
            nal.push(3); // emulation_prevention_three_byte
            zeros = 0;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        nal.push(byte);
    }
    nal
}

/// The NAL units of a length-prefixed access unit, as (offset, length) of each unit's bytes.
fn units(au: &[u8], length_size: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + length_size <= au.len() {
        let len = au[pos..pos + length_size]
            .iter()
            .fold(0usize, |n, b| (n << 8) | *b as usize);
        let start = pos + length_size;
        if len == 0 || start + len > au.len() {
            break;
        }
        out.push((start, len));
        pos = start + len;
    }
    out
}

/// A copy of a length-prefixed access unit with an SEI NAL inserted before its first slice
/// (after an access unit delimiter, which must stay first).
pub fn insert_into_au(au: &[u8], length_size: usize, sei_nal: &[u8]) -> Vec<u8> {
    let at = units(au, length_size)
        .first()
        .filter(|(start, len)| *len > 0 && au[*start] & 0x1f == NAL_AUD)
        .map_or(0, |(start, len)| start + len);
    let mut out = Vec::with_capacity(au.len() + length_size + sei_nal.len());
    out.extend_from_slice(&au[..at]);
    let len = sei_nal.len();
    out.extend((0..length_size).rev().map(|i| (len >> (8 * i)) as u8));
    out.extend_from_slice(sei_nal);
    out.extend_from_slice(&au[at..]);
    out
}

/// The JSON payloads of every FieldCast message in a length-prefixed access unit.
pub fn find_in_au(au: &[u8], length_size: usize) -> Vec<Vec<u8>> {
    units(au, length_size)
        .into_iter()
        .filter(|(start, _)| au[*start] & 0x1f == NAL_SEI)
        .flat_map(|(start, len)| messages(&unescape(&au[start + 1..start + len])))
        .collect()
}

fn unescape(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Parses the sei_message()s of an SEI RBSP, keeping FieldCast user data.
fn messages(rbsp: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let read_varint = |pos: &mut usize| -> Option<usize> {
        let mut value = 0usize;
        loop {
            let b = *rbsp.get(*pos)?;
            *pos += 1;
            value += b as usize;
            if b != 0xff {
                return Some(value);
            }
        }
    };
    // Stop at the trailing bits (0x80 as the last byte) or on malformed data.
    while pos + 1 < rbsp.len() {
        let (Some(kind), Some(size)) = (read_varint(&mut pos), read_varint(&mut pos)) else {
            break;
        };
        let Some(payload) = rbsp.get(pos..pos + size) else {
            break;
        };
        pos += size;
        if kind == PAYLOAD_USER_DATA_UNREGISTERED as usize && payload.starts_with(&FIELDCAST_UUID) {
            out.push(payload[FIELDCAST_UUID.len()..].to_vec());
        }
    }
    out
}

/// Bytes of the NAL length prefix, from an `avcC` codec_data record (4 when unknown).
pub fn length_size(codec_data: Option<&[u8]>) -> usize {
    codec_data
        .and_then(|c| c.get(4))
        .map_or(4, |b| (b & 0x03) as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| {
                (n.len() as u32)
                    .to_be_bytes()
                    .into_iter()
                    .chain(n.iter().copied())
            })
            .collect()
    }

    #[test]
    fn round_trip_after_the_delimiter() {
        let frame = au(&[&[0x09, 0xf0], &[0x65, 0x88, 0x00, 0x00, 0x01]]);
        let json = br#"{"pin":"a","t":1234}"#;
        let with = insert_into_au(&frame, 4, &build_nal(json));
        let nal_types: Vec<u8> = units(&with, 4)
            .iter()
            .map(|(s, _)| with[*s] & 0x1f)
            .collect();
        assert_eq!(nal_types, vec![9, 6, 5]);
        assert_eq!(find_in_au(&with, 4), vec![json.to_vec()]);
        assert!(find_in_au(&frame, 4).is_empty());
    }

    #[test]
    fn long_payloads_and_zero_runs_survive_escaping() {
        let json: Vec<u8> = (0..600)
            .map(|i| if i % 3 == 0 { 0 } else { b'x' })
            .collect();
        let nal = build_nal(&json);
        // No start-code emulation in the escaped NAL.
        assert!(!nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
        let frame = insert_into_au(&au(&[&[0x41, 0x9a]]), 4, &nal);
        assert_eq!(find_in_au(&frame, 4), vec![json]);
    }

    #[test]
    fn other_user_data_and_garbage_are_ignored() {
        let mut foreign = build_nal(b"{}");
        foreign[3] ^= 0xff; // first UUID byte
        assert!(find_in_au(&au(&[&foreign]), 4).is_empty());
        assert!(find_in_au(&[0, 0, 0, 99, 6, 5], 4).is_empty());
        assert!(find_in_au(&au(&[&[6, 5, 200, 1]]), 4).is_empty());
        assert_eq!(length_size(Some(&[1, 0x64, 0, 0x1f, 0xfd])), 2);
        assert_eq!(length_size(None), 4);
    }
}
