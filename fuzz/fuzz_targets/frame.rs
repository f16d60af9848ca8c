//! App-pushed frames and audio: any format, size, strides and plane lengths either validate and
//! pack into exactly the packed size, or give the typed error validation gives; never a panic.
#![no_main]

use std::sync::OnceLock;

use fieldcast_core::fuzzing::{check_audio, pack_frame};
use fieldcast_core::{PixelFormat, Plane, VideoFrame, packed_planes};
use libfuzzer_sys::fuzz_target;

/// Bytes the planes are cut from: 1920x1080 RGBA fits with room for padding.
const POOL: usize = 16 << 20;
/// Bytes of the header: format, width, height, audio length, channels.
const HEADER: usize = 15;
/// Bytes of one plane: offset, length, row stride, pixel stride.
const PLANE: usize = 16;

fn pool() -> &'static [u8] {
    static POOL_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    POOL_BYTES.get_or_init(|| (0..POOL).map(|i| (i * 31 % 251) as u8).collect())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

// The input: format (1 byte), width and height (u32 LE), audio length (u16 LE), channels
// (u32 LE), then up to five planes of four u32 LE each: offset into and length of the pool, row
// stride, pixel stride.
fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let pool = pool();
    let format = PixelFormat::ALL[usize::from(data[0]) % PixelFormat::ALL.len()];
    let (width, height) = (u32_at(data, 1), u32_at(data, 5));
    let audio_len = usize::from(u16::from_le_bytes([data[9], data[10]]));
    let channels = u32_at(data, 11);
    let planes: Vec<Plane<'_>> = data[HEADER..]
        .chunks_exact(PLANE)
        .take(5)
        .map(|p| {
            let start = u32_at(p, 0) as usize % POOL;
            let end = start.saturating_add(u32_at(p, 4) as usize).min(POOL);
            Plane::new(&pool[start..end], u32_at(p, 8), u32_at(p, 12))
        })
        .collect();
    let frame = VideoFrame {
        format,
        width,
        height,
        planes: &planes,
        timestamp_us: None,
    };
    match pack_frame(&frame) {
        Ok(bytes) => {
            assert_eq!(bytes.len(), format.packed_len(width, height));
            assert_eq!(frame.validate(), Ok(()));
        }
        Err(e) => assert_eq!(frame.validate(), Err(e)),
    }

    // The same size as one tightly packed buffer splits into planes that pack back unchanged.
    let packed_len = format.packed_len(width, height);
    if packed_len <= POOL
        && let Ok(split) = packed_planes(format, width, height, &pool[..packed_len])
    {
        let tight = VideoFrame {
            planes: &split,
            ..frame
        };
        assert_eq!(pack_frame(&tight).as_deref(), Ok(&pool[..packed_len]));
    }

    let audio = &pool[..audio_len];
    let whole = channels > 0 && audio.len().is_multiple_of(2 * channels as usize);
    assert_eq!(
        check_audio(audio, channels).is_ok(),
        !audio.is_empty() && whole
    );
});
