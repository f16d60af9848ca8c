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

/// NAL length prefixes FieldCast reads and writes, in bytes (`avcC`'s lengthSizeMinusOne + 1).
const LENGTH_SIZES: std::ops::RangeInclusive<usize> = 1..=4;

/// The NAL units of a length-prefixed access unit, as (offset, length) of each unit's bytes;
/// none for a prefix size outside 1..=4. Lengths are read as u64 and every sum is checked: a
/// 4-byte prefix may claim up to 4 GiB, past what a 32-bit `usize` can add to an offset.
fn units(au: &[u8], length_size: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if !LENGTH_SIZES.contains(&length_size) {
        return out;
    }
    let mut pos = 0;
    while let Some(prefix) = au.get(pos..).and_then(|rest| rest.get(..length_size)) {
        let len = prefix.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
        let start = pos + length_size;
        let Some(end) = usize::try_from(len)
            .ok()
            .filter(|&len| len > 0)
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= au.len())
        else {
            break;
        };
        out.push((start, end - start));
        pos = end;
    }
    out
}

/// A copy of a length-prefixed access unit with an SEI NAL inserted before its first slice
/// (after an access unit delimiter, which must stay first); `None` when the prefix size is
/// outside 1..=4 or the NAL is too long for its length prefix.
pub fn insert_into_au(au: &[u8], length_size: usize, sei_nal: &[u8]) -> Option<Vec<u8>> {
    if !LENGTH_SIZES.contains(&length_size) {
        return None;
    }
    let len = u64::try_from(sei_nal.len()).ok()?;
    if len >> (8 * length_size) != 0 {
        return None;
    }
    let at = units(au, length_size)
        .first()
        .filter(|(start, len)| *len > 0 && au[*start] & 0x1f == NAL_AUD)
        .map_or(0, |(start, len)| start + len);
    let mut out = Vec::with_capacity(au.len() + length_size + sei_nal.len());
    out.extend_from_slice(&au[..at]);
    out.extend((0..length_size).rev().map(|i| (len >> (8 * i)) as u8));
    out.extend_from_slice(sei_nal);
    out.extend_from_slice(&au[at..]);
    Some(out)
}

/// The JSON payloads of every FieldCast message in a length-prefixed access unit (what a
/// player of the stream reads; QA).
#[cfg(any(test, feature = "qa", feature = "fuzzing"))]
pub fn find_in_au(au: &[u8], length_size: usize) -> Vec<Vec<u8>> {
    units(au, length_size)
        .into_iter()
        .filter(|(start, _)| au[*start] & 0x1f == NAL_SEI)
        .flat_map(|(start, len)| messages(&unescape(&au[start + 1..start + len])))
        .collect()
}

#[cfg(any(test, feature = "qa", feature = "fuzzing"))]
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
#[cfg(any(test, feature = "qa", feature = "fuzzing"))]
fn messages(rbsp: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let read_varint = |pos: &mut usize| -> Option<usize> {
        let mut value = 0usize;
        loop {
            let b = *rbsp.get(*pos)?;
            *pos += 1;
            value = value.checked_add(usize::from(b))?;
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
        let Some(payload) = pos.checked_add(size).and_then(|end| rbsp.get(pos..end)) else {
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
        let with = insert_into_au(&frame, 4, &build_nal(json)).unwrap();
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
        let frame = insert_into_au(&au(&[&[0x41, 0x9a]]), 4, &nal).unwrap();
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

    #[test]
    fn lengths_past_the_buffer_or_the_address_space_end_the_walk() {
        let slice: &[u8] = &[0x41, 0x9a];
        // A unit, then a prefix claiming 4 GiB - 1: on 32-bit targets its end overflows usize.
        let mut frame = au(&[slice]);
        frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x06, 0x05]);
        assert_eq!(units(&frame, 4), vec![(4, 2)]);
        assert!(find_in_au(&frame, 4).is_empty());
        // Prefix sizes outside 1..=4 find nothing and insert nothing.
        assert!(units(&frame, 0).is_empty() && units(&frame, 8).is_empty());
        assert_eq!(insert_into_au(&frame, 0, &[6]), None);
        assert_eq!(insert_into_au(&frame, 5, &[6]), None);
        // A NAL longer than its prefix can say is not written with a truncated length.
        let nal = build_nal(&[b'x'; 300]);
        assert_eq!(insert_into_au(&[1, 0x41], 1, &nal), None);
        let two = insert_into_au(&[0, 2, 0x41, 0x9a], 2, &nal).unwrap();
        assert_eq!(units(&two, 2).len(), 2);
        assert_eq!(find_in_au(&two, 2), vec![vec![b'x'; 300]]);
    }
}
