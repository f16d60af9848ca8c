//! Properties of frame validation on random formats, sizes, strides and plane lengths: a frame
//! validates and packs exactly as a reading of its planes with checked indexing does, or it is
//! rejected with the typed error its first fault calls for.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::frame::{FrameError, MAX_HEIGHT, MAX_WIDTH, PixelFormat, Plane, VideoFrame};

/// Bytes every plane is cut from.
const POOL: usize = 64 * 1024;

fn pool() -> Vec<u8> {
    (0..POOL).map(|i| (i * 7 % 253) as u8).collect()
}

/// Columns, rows and bytes per sample of each plane of `format` at `width` x `height`.
fn planes_of(format: PixelFormat, width: u32, height: u32) -> Vec<(u32, u32, u32)> {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    match format {
        PixelFormat::I420 | PixelFormat::Yuv420Flexible => {
            vec![(width, height, 1), (cw, ch, 1), (cw, ch, 1)]
        }
        PixelFormat::Nv12 | PixelFormat::Nv21 => vec![(width, height, 1), (cw, ch, 2)],
        PixelFormat::Rgba | PixelFormat::Bgra => vec![(width, height, 4)],
    }
}

/// The frame's samples read one by one with checked indexing, tightly packed; `None` when a
/// sample lies outside its plane.
fn read_samples(frame: &VideoFrame<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for ((cols, rows, sample), plane) in planes_of(frame.format, frame.width, frame.height)
        .into_iter()
        .zip(frame.planes)
    {
        for r in 0..rows as usize {
            for c in 0..cols as usize {
                let at = r * plane.row_stride as usize + c * plane.pixel_stride as usize;
                out.extend_from_slice(plane.data.get(at..at + sample as usize)?);
            }
        }
    }
    Some(out)
}

fn format() -> impl Strategy<Value = PixelFormat> {
    prop::sample::select(PixelFormat::ALL.to_vec())
}

/// Sizes mostly small enough to fill from the pool, sometimes zero, odd, at or past the limits.
fn side(limit: u32) -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => 1u32..=48,
        1 => Just(0u32),
        1 => Just(limit),
        1 => Just(limit + 1),
        1 => any::<u32>(),
    ]
}

/// A plane of any offset, length and strides, often close to the values that fit.
#[derive(Debug, Clone)]
struct RawPlane {
    offset: usize,
    len: usize,
    row_stride: u32,
    pixel_stride: u32,
}

fn raw_plane() -> impl Strategy<Value = RawPlane> {
    (
        0..POOL,
        prop_oneof![0usize..=256, 0usize..=POOL],
        prop_oneof![0u32..=200, any::<u32>()],
        prop_oneof![0u32..=5, any::<u32>()],
    )
        .prop_map(|(offset, len, row_stride, pixel_stride)| RawPlane {
            offset,
            len,
            row_stride,
            pixel_stride,
        })
}

/// A plane that fits its shape: some padding after each row, a last row of any length between
/// its last sample and the full stride.
fn fitting_planes(
    format: PixelFormat,
    width: u32,
    height: u32,
) -> impl Strategy<Value = Vec<RawPlane>> {
    let shapes = planes_of(format, width, height);
    let count = shapes.len();
    (vec((0u32..=16, any::<bool>(), 0u32..=16, 0..POOL / 2), count)).prop_map(move |picks| {
        shapes
            .iter()
            .zip(picks)
            .enumerate()
            .map(
                |(index, (&(cols, rows, sample), (pad, wide, tail, offset)))| {
                    // YUV_420_888's chroma planes may be interleaved with each other.
                    let pixel_stride = if format == PixelFormat::Yuv420Flexible && index > 0 && wide
                    {
                        2
                    } else {
                        sample
                    };
                    let row = (cols - 1) * pixel_stride + sample;
                    let row_stride = row + pad;
                    let len = ((rows - 1) * row_stride + row + tail.min(pad)) as usize;
                    RawPlane {
                        offset: offset.min(POOL - len),
                        len,
                        row_stride,
                        pixel_stride,
                    }
                },
            )
            .collect()
    })
}

fn frame_parts() -> impl Strategy<Value = (PixelFormat, u32, u32, Vec<RawPlane>)> {
    (
        format(),
        side(MAX_WIDTH),
        side(MAX_HEIGHT),
        vec(raw_plane(), 0..=4),
    )
}

fn valid_frame_parts() -> impl Strategy<Value = (PixelFormat, u32, u32, Vec<RawPlane>)> {
    (format(), 1u32..=24, 1u32..=24).prop_flat_map(|(format, w, h)| {
        // The YUV formats take even sizes only.
        let (w, h) = match format {
            PixelFormat::Rgba | PixelFormat::Bgra => (w, h),
            _ => (w * 2, h * 2),
        };
        fitting_planes(format, w, h).prop_map(move |planes| (format, w, h, planes))
    })
}

fn cut<'a>(pool: &'a [u8], raw: &[RawPlane]) -> Vec<Plane<'a>> {
    raw.iter()
        .map(|p| {
            let end = p.offset.saturating_add(p.len).min(pool.len());
            Plane::new(&pool[p.offset..end], p.row_stride, p.pixel_stride)
        })
        .collect()
}

/// The first fault of a frame, checked as the documentation of [`FrameError`] states them.
fn expected_fault(frame: &VideoFrame<'_>) -> Option<&'static str> {
    let (w, h) = (frame.width, frame.height);
    let yuv = !matches!(frame.format, PixelFormat::Rgba | PixelFormat::Bgra);
    if w == 0 || h == 0 || w > MAX_WIDTH || h > MAX_HEIGHT || (yuv && (w % 2 == 1 || h % 2 == 1)) {
        return Some("BadDimensions");
    }
    let shapes = planes_of(frame.format, w, h);
    if shapes.len() != frame.planes.len() {
        return Some("PlaneCount");
    }
    for (index, (&(cols, rows, sample), plane)) in shapes.iter().zip(frame.planes).enumerate() {
        let allowed: &[u32] = match (frame.format, index) {
            (PixelFormat::Yuv420Flexible, 1 | 2) => &[1, 2],
            _ => &[sample],
        };
        if !allowed.contains(&plane.pixel_stride) {
            return Some("BadPixelStride");
        }
        let row = u64::from(cols - 1) * u64::from(plane.pixel_stride) + u64::from(sample);
        if u64::from(plane.row_stride) < row {
            return Some("StrideTooSmall");
        }
        let min = u64::from(rows - 1) * u64::from(plane.row_stride) + row;
        let max = u64::from(rows) * u64::from(plane.row_stride);
        if !(min..=max).contains(&(plane.data.len() as u64)) {
            return Some("WrongSize");
        }
    }
    None
}

fn fault_name(error: &FrameError) -> &'static str {
    match error {
        FrameError::BadDimensions { .. } => "BadDimensions",
        FrameError::PlaneCount { .. } => "PlaneCount",
        FrameError::BadPixelStride { .. } => "BadPixelStride",
        FrameError::StrideTooSmall { .. } => "StrideTooSmall",
        FrameError::WrongSize { .. } => "WrongSize",
        other => panic!("frame validation gave {other:?}"),
    }
}

/// Validates and packs a frame, checking the outcome against the checked reading.
fn check(format: PixelFormat, width: u32, height: u32, raw: &[RawPlane]) -> Result<(), String> {
    let pool = pool();
    let planes = cut(&pool, raw);
    let frame = VideoFrame {
        format,
        width,
        height,
        planes: &planes,
        timestamp_us: None,
    };
    match (frame.validate_and_pack(), expected_fault(&frame)) {
        (Ok(packed), None) => {
            let read = read_samples(&frame).ok_or("a valid frame has samples past its planes")?;
            if packed.bytes != read {
                return Err("packing differs from the checked reading".into());
            }
            if packed.bytes.len() != format.packed_len(width, height) {
                return Err("packed length differs from packed_len".into());
            }
            Ok(())
        }
        (Err(error), Some(expected)) if fault_name(&error) == expected => (frame.validate()
            == Err(error.clone()))
        .then_some(())
        .ok_or_else(|| format!("validate() disagrees with packing on {error:?}")),
        (got, expected) => Err(format!(
            "got {:?}, expected {expected:?}",
            got.map(|p| p.bytes.len())
        )),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_frames_pack_or_give_the_typed_error((format, w, h, raw) in frame_parts()) {
        check(format, w, h, &raw).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn fitting_planes_pack_like_a_checked_reading((format, w, h, raw) in valid_frame_parts()) {
        check(format, w, h, &raw).map_err(TestCaseError::fail)?;
        let pool = pool();
        let planes = cut(&pool, &raw);
        let frame = VideoFrame { format, width: w, height: h, planes: &planes, timestamp_us: None };
        prop_assert!(frame.validate().is_ok());
    }

    #[test]
    fn one_byte_off_either_end_of_a_plane_is_the_wrong_size(
        (format, w, h, raw) in valid_frame_parts(),
        index in any::<prop::sample::Index>(),
        longer in any::<bool>(),
    ) {
        let mut raw = raw;
        let shapes = planes_of(format, w, h);
        let at = index.index(shapes.len());
        let (cols, rows, sample) = shapes[at];
        let plane = &mut raw[at];
        // Grow past the full stride, or shrink to end before the last sample.
        let stride = plane.row_stride as usize;
        let row = (cols - 1) as usize * plane.pixel_stride as usize + sample as usize;
        plane.len = if longer { rows as usize * stride + 1 } else { (rows as usize - 1) * stride + row - 1 };
        plane.offset = plane.offset.min(POOL - plane.len);
        let pool = pool();
        let planes = cut(&pool, &raw);
        let frame = VideoFrame { format, width: w, height: h, planes: &planes, timestamp_us: None };
        let wrong = matches!(frame.validate(), Err(FrameError::WrongSize { .. }));
        prop_assert!(wrong, "{:?}", frame.validate());
    }
}
