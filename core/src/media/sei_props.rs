//! Properties of the SEI builder and finder on random payloads, NAL streams and bytes.

use proptest::collection::vec;
use proptest::prelude::*;

use super::sei::{MAX_JSON, build_nal, find_in_au, insert_into_au, length_size};

/// The access unit of `nals`, each behind a big-endian length prefix of `size` bytes.
fn prefixed(nals: &[Vec<u8>], size: usize) -> Vec<u8> {
    nals.iter()
        .flat_map(|nal| {
            let len = nal.len() as u64;
            (0..size)
                .rev()
                .map(move |i| (len >> (8 * i)) as u8)
                .chain(nal.iter().copied())
        })
        .collect()
}

/// Payloads up to past [`MAX_JSON`], often with the zero runs escaping must break up.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..=MAX_JSON + 64),
        vec(
            prop_oneof![Just(0u8), Just(1), Just(3), any::<u8>()],
            0..=64
        ),
    ]
}

/// A NAL unit of any type other than SEI, of 1 to 40 random bytes, the largest that a 1-byte
/// prefix can carry alongside.
fn other_nal() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..=40).prop_filter("not an SEI", |nal| nal[0] & 0x1f != 6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn built_messages_are_found_again_anywhere_in_a_nal_stream(
        size in 1usize..=4,
        payloads in vec(payload(), 1..=3),
        others in vec(other_nal(), 0..=6),
        seed in any::<u64>(),
    ) {
        let seis: Vec<Vec<u8>> = payloads.iter().map(|p| build_nal(p)).collect();
        prop_assume!(seis.iter().all(|nal| (nal.len() as u64) >> (8 * size) == 0));
        // Deal the SEI NALs in among the others, in order, at positions picked by `seed`.
        let mut nals = others.clone();
        let mut state = seed;
        for sei in &seis {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let at = (state >> 33) as usize % (nals.len() + 1);
            let after = nals.iter().rposition(|n| n[0] & 0x1f == 6).map_or(0, |i| i + 1);
            nals.insert(at.max(after), sei.clone());
        }
        prop_assert_eq!(find_in_au(&prefixed(&nals, size), size), payloads);
    }

    #[test]
    fn a_message_inserted_into_any_access_unit_comes_first(
        size in 1usize..=4,
        json in payload(),
        au in vec(any::<u8>(), 0..=200),
        delimited in any::<bool>(),
    ) {
        let au = if delimited {
            let mut with = prefixed(&[vec![0x09, 0xf0]], size);
            with.extend_from_slice(&au);
            with
        } else {
            au
        };
        let nal = build_nal(&json);
        let fits = (nal.len() as u64) >> (8 * size) == 0;
        match insert_into_au(&au, size, &nal) {
            Some(with) => {
                prop_assert!(fits);
                prop_assert_eq!(with.len(), au.len() + size + nal.len());
                let found = find_in_au(&with, size);
                prop_assert_eq!(found.first(), Some(&json));
                if delimited {
                    // The delimiter stays first.
                    prop_assert_eq!(&with[..size + 2], &au[..size + 2]);
                }
            }
            None => prop_assert!(!fits),
        }
    }

    #[test]
    fn built_nals_emulate_no_start_code(json in payload()) {
        let nal = build_nal(&json);
        prop_assert_eq!(nal[0], 6);
        prop_assert!(!nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
        prop_assert_eq!(nal.last(), Some(&0x80));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        au in vec(any::<u8>(), 0..=512),
        size in 0usize..=8,
        nal in vec(any::<u8>(), 0..=300),
    ) {
        let _ = find_in_au(&au, size);
        prop_assert!((1..=4).contains(&length_size(Some(&au))));
        if let Some(with) = insert_into_au(&au, size, &nal) {
            prop_assert!((1..=4).contains(&size));
            prop_assert_eq!(with.len(), au.len() + size + nal.len());
            let _ = find_in_au(&with, size);
        }
    }

    #[test]
    fn prefixes_claiming_more_than_the_buffer_end_the_walk(
        size in 1usize..=4,
        claimed in any::<u32>(),
        tail in vec(any::<u8>(), 0..=64),
    ) {
        let message = build_nal(b"{}");
        let mut au = prefixed(&[message], size);
        let before = find_in_au(&au, size);
        // A prefix as large as it can be for its size, up to 4 GiB - 1, past the buffer.
        let limit = if size == 4 { u64::from(u32::MAX) } else { (1u64 << (8 * size)) - 1 };
        let len = (u64::from(claimed) % limit).max(tail.len() as u64 + 1);
        au.extend((0..size).rev().map(|i| (len >> (8 * i)) as u8));
        au.extend_from_slice(&tail);
        prop_assert_eq!(find_in_au(&au, size), before);
    }
}
