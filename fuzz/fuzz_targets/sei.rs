//! SEI messages in length-prefixed access units: whatever the access unit, finding never panics,
//! and a message built and inserted into it is found again with the same payload.
#![no_main]

use fieldcast_core::fuzzing::{build_nal, find_in_au, insert_into_au, length_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [head, json_len, rest @ ..] = data else {
        return;
    };
    // Prefix sizes 0..=5: the four valid ones and an invalid one on each side.
    let size = usize::from(head % 6);
    let (json, au) = rest.split_at(usize::from(*json_len).min(rest.len()));

    let _ = find_in_au(au, size);
    assert!((1..=4).contains(&length_size(Some(au))));

    let nal = build_nal(json);
    assert!(
        !nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2),
        "start code emulation in a built SEI NAL"
    );
    let fits = (1..=4).contains(&size) && (nal.len() as u64) >> (8 * size) == 0;
    match insert_into_au(au, size, &nal) {
        Some(with) => {
            assert!(fits, "inserted with a prefix of {size} bytes");
            assert_eq!(with.len(), au.len() + size + nal.len());
            let found = find_in_au(&with, size);
            assert_eq!(found.first().map(Vec::as_slice), Some(json));
        }
        None => assert!(!fits, "not inserted though it fits a {size}-byte prefix"),
    }
});
