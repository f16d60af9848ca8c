//! App-pushed media: raw video frames as cameras hand them (planes with row and pixel strides) and
//! PCM audio, validated before they enter the pipeline.
//!
//! A frame is a set of planes, each a borrowed byte slice with its own row stride (bytes from one
//! row to the next) and pixel stride (bytes from one sample to the next), as Android's
//! `YUV_420_888` `Image.Plane` and iOS's `CVPixelBuffer` planes describe them. The last row of a
//! plane may be unpadded (Android's buffers end right after its last pixel). A frame is copied
//! once, into the tightly packed layout GStreamer takes; nothing else copies it.

use std::fmt;
use std::str::FromStr;

/// Largest accepted frame side, in pixels (8K UHD).
pub const MAX_WIDTH: u32 = 7680;
/// Largest accepted frame height, in pixels (8K UHD).
pub const MAX_HEIGHT: u32 = 4320;

/// Pixel layouts an app may push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Planar Y, U, V; chroma subsampled 2x2; pixel stride 1 in every plane.
    I420,
    /// Three planes Y, U, V with chroma subsampled 2x2 and any chroma pixel stride (1 for planar,
    /// 2 for interleaved in either order): Android's `ImageFormat.YUV_420_888`. Packed to I420.
    Yuv420Flexible,
    /// Planar Y, interleaved UV (iOS `420YpCbCr8BiPlanar`, many Android decoders).
    Nv12,
    /// Planar Y, interleaved VU (Android's legacy camera default).
    Nv21,
    /// Packed 8-bit R, G, B, A.
    Rgba,
    /// Packed 8-bit B, G, R, A (iOS `kCVPixelFormatType_32BGRA`).
    Bgra,
}

/// The shape of one plane of a format at a frame size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlaneShape {
    /// Samples per row.
    cols: u32,
    /// Rows.
    rows: u32,
    /// Bytes of one sample (1 for a luma or chroma byte, 2 for a UV pair, 4 for RGBA).
    sample: u32,
    /// Pixel strides the format accepts for this plane.
    pixel_strides: &'static [u32],
}

impl PlaneShape {
    /// Bytes of this plane tightly packed (saturating: sizes past the checked limits do not
    /// wrap around on 32-bit targets).
    fn packed_len(&self) -> usize {
        [self.cols, self.sample, self.rows]
            .into_iter()
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .fold(1, usize::saturating_mul)
    }
}

impl PixelFormat {
    /// Every format, for listings and tests.
    pub const ALL: [PixelFormat; 6] = [
        PixelFormat::I420,
        PixelFormat::Yuv420Flexible,
        PixelFormat::Nv12,
        PixelFormat::Nv21,
        PixelFormat::Rgba,
        PixelFormat::Bgra,
    ];

    /// The GStreamer caps name of what the frame becomes once packed.
    pub fn gst_name(self) -> &'static str {
        match self {
            PixelFormat::I420 | PixelFormat::Yuv420Flexible => "I420",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Nv21 => "NV21",
            PixelFormat::Rgba => "RGBA",
            PixelFormat::Bgra => "BGRA",
        }
    }

    /// The name apps use for the format.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Yuv420Flexible => "YUV_420_888",
            other => other.gst_name(),
        }
    }

    /// True for formats with 2x2 subsampled chroma, whose sizes must be even.
    fn is_yuv(self) -> bool {
        !matches!(self, PixelFormat::Rgba | PixelFormat::Bgra)
    }

    /// The planes of a frame of this format and size.
    fn shapes(self, width: u32, height: u32) -> Vec<PlaneShape> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let plane = |cols, rows, sample, pixel_strides| PlaneShape {
            cols,
            rows,
            sample,
            pixel_strides,
        };
        match self {
            PixelFormat::I420 => vec![
                plane(width, height, 1, &[1]),
                plane(cw, ch, 1, &[1]),
                plane(cw, ch, 1, &[1]),
            ],
            PixelFormat::Yuv420Flexible => vec![
                plane(width, height, 1, &[1]),
                plane(cw, ch, 1, &[1, 2]),
                plane(cw, ch, 1, &[1, 2]),
            ],
            PixelFormat::Nv12 | PixelFormat::Nv21 => {
                vec![plane(width, height, 1, &[1]), plane(cw, ch, 2, &[2])]
            }
            PixelFormat::Rgba | PixelFormat::Bgra => vec![plane(width, height, 4, &[4])],
        }
    }

    /// Bytes of a tightly packed frame of this format and size.
    pub fn packed_len(self, width: u32, height: u32) -> usize {
        self.shapes(width, height)
            .iter()
            .map(PlaneShape::packed_len)
            .fold(0, usize::saturating_add)
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PixelFormat {
    type Err = FrameError;
    fn from_str(s: &str) -> Result<Self, FrameError> {
        match s.to_ascii_uppercase().as_str() {
            "I420" | "YUV420P" => Ok(PixelFormat::I420),
            "YUV_420_888" | "YUV420FLEXIBLE" => Ok(PixelFormat::Yuv420Flexible),
            "NV12" => Ok(PixelFormat::Nv12),
            "NV21" => Ok(PixelFormat::Nv21),
            "RGBA" => Ok(PixelFormat::Rgba),
            "BGRA" => Ok(PixelFormat::Bgra),
            _ => Err(FrameError::UnsupportedFormat(s.to_string())),
        }
    }
}

/// Why a pushed frame or audio buffer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The pixel format is not one FieldCast accepts.
    #[error(
        "pixel format `{0}` is not supported (use I420, YUV_420_888, NV12, NV21, RGBA or BGRA)"
    )]
    UnsupportedFormat(String),
    /// Width or height is zero, odd for a YUV format, or larger than 7680x4320.
    #[error(
        "frame size {width}x{height} is invalid (1..=7680 x 1..=4320, even for the YUV formats)"
    )]
    BadDimensions { width: u32, height: u32 },
    /// The frame does not have the format or size the session was configured with.
    #[error("frame is {got} but the session takes {expected}")]
    Mismatch { got: String, expected: String },
    /// The number of planes does not match the format.
    #[error("{format} has {expected} planes but {given} were given")]
    PlaneCount {
        format: PixelFormat,
        expected: usize,
        given: usize,
    },
    /// A plane's pixel stride is not one the format allows.
    #[error(
        "pixel stride {pixel_stride} of plane {plane} is not allowed for {format} (use {allowed:?})"
    )]
    BadPixelStride {
        format: PixelFormat,
        plane: u32,
        pixel_stride: u32,
        allowed: Vec<u32>,
    },
    /// A row stride is shorter than the row it must hold.
    #[error("row stride {row_stride} of plane {plane} is shorter than its {row} bytes of pixels")]
    StrideTooSmall {
        plane: u32,
        row_stride: u32,
        row: u32,
    },
    /// A plane's buffer does not fit its rows and strides: shorter than its last pixel needs, or
    /// longer than its rows with their full stride.
    #[error(
        "plane {plane} of {format} {width}x{height} holds {actual} bytes but needs {min} to {max}"
    )]
    WrongSize {
        format: PixelFormat,
        width: u32,
        height: u32,
        plane: u32,
        min: u64,
        max: u64,
        actual: u64,
    },
    /// The audio buffer is empty or not whole S16LE samples for every channel.
    #[error(
        "audio buffer of {bytes} bytes is not a whole number of {channels}-channel S16LE frames"
    )]
    BadAudio { bytes: u64, channels: u32 },
    /// Media was pushed to a session whose source is not the app.
    #[error("this session does not take app-pushed media (its source is {0})")]
    NotAppSource(String),
}

/// One plane of a frame: its bytes, borrowed from the caller, and how they are laid out.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    /// The plane's bytes, from its first sample; the last row may end right after its last sample.
    pub data: &'a [u8],
    /// Bytes from the start of one row to the start of the next.
    pub row_stride: u32,
    /// Bytes from one sample to the next within a row (1 for planar chroma, 2 for interleaved).
    pub pixel_stride: u32,
}

impl<'a> Plane<'a> {
    /// A plane of `data` laid out with `row_stride` and `pixel_stride` bytes.
    pub fn new(data: &'a [u8], row_stride: u32, pixel_stride: u32) -> Self {
        Plane {
            data,
            row_stride,
            pixel_stride,
        }
    }
}

/// One raw video frame as an app hands it over (camera callback, decoder, renderer).
#[derive(Debug, Clone, Copy)]
pub struct VideoFrame<'a> {
    /// Pixel layout.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The planes, in the format's order (Y, U, V; Y, UV; or the one RGBA plane).
    pub planes: &'a [Plane<'a>],
    /// Capture time in microseconds on a monotonic clock shared with the audio; `None` stamps on arrival.
    pub timestamp_us: Option<u64>,
}

/// Splits one tightly packed buffer (every plane right after the previous one, no padding) into
/// the planes of `format` at `width` x `height`.
pub fn packed_planes(
    format: PixelFormat,
    width: u32,
    height: u32,
    data: &[u8],
) -> Result<Vec<Plane<'_>>, FrameError> {
    check_dimensions(format, width, height)?;
    let expected = format.packed_len(width, height);
    if data.len() != expected {
        return Err(FrameError::WrongSize {
            format,
            width,
            height,
            plane: 0,
            min: expected as u64,
            max: expected as u64,
            actual: data.len() as u64,
        });
    }
    let mut rest = data;
    Ok(format
        .shapes(width, height)
        .iter()
        .map(|s| {
            let row = s.cols * s.sample;
            let (plane, tail) = rest.split_at(row as usize * s.rows as usize);
            rest = tail;
            Plane::new(plane, row, s.sample)
        })
        .collect())
}

/// A frame laid out tightly in its GStreamer format, ready to become a buffer.
pub(crate) struct PackedFrame {
    pub bytes: Vec<u8>,
    /// Each plane's row length in bytes and its rows, in order.
    pub rows: Vec<(usize, usize)>,
}

/// Where a buffer of a video format keeps each plane: GStreamer's default layout for a format and
/// size (`gst_video::VideoInfo`), whose rows may be longer than the pixels they hold.
pub(crate) struct PlaneLayout {
    /// Byte offset of each plane.
    pub offsets: Vec<usize>,
    /// Row stride of each plane, bytes.
    pub strides: Vec<usize>,
    /// The whole buffer, bytes.
    pub size: usize,
}

impl PlaneLayout {
    /// GStreamer's layout of `info`'s format and size.
    pub(crate) fn of(info: &gstreamer_video::VideoInfo) -> PlaneLayout {
        PlaneLayout {
            offsets: info.offset().to_vec(),
            strides: info.stride().iter().map(|&s| s as usize).collect(),
            size: info.size(),
        }
    }

    /// True when planes packed as `rows` (each plane's row length and rows, in order) already
    /// are this layout: no row is padded.
    pub(crate) fn is_packed(&self, rows: &[(usize, usize)]) -> bool {
        rows.len() == self.strides.len()
            && self.size == rows.iter().map(|(row, n)| row * n).sum::<usize>()
    }

    /// Where the rows of planes packed as `rows` (bytes per row, rows per plane) go in this
    /// layout: (offset, length) spans in order, rows that follow each other as one span.
    pub(crate) fn spans(&self, rows: &[(usize, usize)]) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (plane, &(row, count)) in rows.iter().enumerate() {
            for r in 0..count {
                let offset = self.offsets[plane] + r * self.strides[plane];
                match spans.last_mut() {
                    Some((at, len)) if *at + *len == offset => *len += row,
                    _ => spans.push((offset, row)),
                }
            }
        }
        spans
    }

    /// Copies planes packed as `rows` from `packed` into `out` (at least `size` bytes), every row
    /// to its offset and stride. Padding bytes are left as they are.
    pub(crate) fn place(&self, packed: &[u8], rows: &[(usize, usize)], out: &mut [u8]) {
        let mut from = 0;
        for (to, len) in self.spans(rows) {
            out[to..to + len].copy_from_slice(&packed[from..from + len]);
            from += len;
        }
    }
}

impl PackedFrame {
    /// The frame in `layout`: the bytes as they are when the layout is tight (a width whose rows
    /// need no padding), else every row copied to its offset and stride. A buffer smaller than
    /// its caps promise cannot be mapped by the elements downstream.
    pub(crate) fn into_layout(self, layout: &PlaneLayout) -> Vec<u8> {
        if layout.is_packed(&self.rows) {
            return self.bytes;
        }
        let mut out = vec![0u8; layout.size];
        layout.place(&self.bytes, &self.rows, &mut out);
        out
    }
}

impl VideoFrame<'_> {
    /// Checks every plane against the format, size and strides, then copies the frame once into
    /// its tightly packed GStreamer layout.
    pub(crate) fn validate_and_pack(&self) -> Result<PackedFrame, FrameError> {
        let shapes = self.checked_shapes()?;
        let mut bytes = Vec::with_capacity(shapes.iter().map(PlaneShape::packed_len).sum());
        for (shape, plane) in shapes.iter().zip(self.planes) {
            pack_plane(shape, plane, &mut bytes);
        }
        let rows = shapes
            .iter()
            .map(|s| ((s.cols * s.sample) as usize, s.rows as usize))
            .collect();
        Ok(PackedFrame { bytes, rows })
    }

    /// Checks the frame against itself: size, plane count, strides and every plane's length.
    pub fn validate(&self) -> Result<(), FrameError> {
        self.checked_shapes().map(|_| ())
    }

    fn checked_shapes(&self) -> Result<Vec<PlaneShape>, FrameError> {
        check_dimensions(self.format, self.width, self.height)?;
        let shapes = self.format.shapes(self.width, self.height);
        if shapes.len() != self.planes.len() {
            return Err(FrameError::PlaneCount {
                format: self.format,
                expected: shapes.len(),
                given: self.planes.len(),
            });
        }
        for (index, (shape, plane)) in shapes.iter().zip(self.planes).enumerate() {
            self.check_plane(index as u32, shape, plane)?;
        }
        Ok(shapes)
    }

    fn check_plane(
        &self,
        index: u32,
        shape: &PlaneShape,
        plane: &Plane<'_>,
    ) -> Result<(), FrameError> {
        if !shape.pixel_strides.contains(&plane.pixel_stride) {
            return Err(FrameError::BadPixelStride {
                format: self.format,
                plane: index,
                pixel_stride: plane.pixel_stride,
                allowed: shape.pixel_strides.to_vec(),
            });
        }
        // Bytes from a row's first sample to the end of its last one.
        let row =
            u64::from(shape.cols - 1) * u64::from(plane.pixel_stride) + u64::from(shape.sample);
        if u64::from(plane.row_stride) < row {
            return Err(FrameError::StrideTooSmall {
                plane: index,
                row_stride: plane.row_stride,
                row: row as u32,
            });
        }
        let min = u64::from(shape.rows - 1) * u64::from(plane.row_stride) + row;
        let max = u64::from(shape.rows) * u64::from(plane.row_stride);
        let actual = plane.data.len() as u64;
        if actual < min || actual > max {
            return Err(FrameError::WrongSize {
                format: self.format,
                width: self.width,
                height: self.height,
                plane: index,
                min,
                max,
                actual,
            });
        }
        Ok(())
    }
}

/// Appends one validated plane to `out`, tightly packed: whole rows at once where the samples are
/// adjacent, one sample at a time where they are interleaved with another plane's.
fn pack_plane(shape: &PlaneShape, plane: &Plane<'_>, out: &mut Vec<u8>) {
    let stride = plane.row_stride as usize;
    let sample = shape.sample as usize;
    let pixel = plane.pixel_stride as usize;
    let cols = shape.cols as usize;
    for r in 0..shape.rows as usize {
        let start = r * stride;
        if pixel == sample {
            out.extend_from_slice(&plane.data[start..start + cols * sample]);
        } else {
            let row = &plane.data[start..start + (cols - 1) * pixel + sample];
            out.extend(row.iter().step_by(pixel));
        }
    }
}

/// Checks that a frame size is usable for a format.
pub(crate) fn check_dimensions(
    format: PixelFormat,
    width: u32,
    height: u32,
) -> Result<(), FrameError> {
    if width == 0
        || height == 0
        || width > MAX_WIDTH
        || height > MAX_HEIGHT
        || (format.is_yuv() && (!width.is_multiple_of(2) || !height.is_multiple_of(2)))
    {
        return Err(FrameError::BadDimensions { width, height });
    }
    Ok(())
}

/// Checks an interleaved S16LE buffer: non-empty and whole frames for every channel.
pub(crate) fn check_audio(data: &[u8], channels: u32) -> Result<(), FrameError> {
    let frame = usize::try_from(channels)
        .ok()
        .and_then(|c| c.checked_mul(2))
        .filter(|&f| f > 0);
    if data.is_empty() || !frame.is_some_and(|f| data.len().is_multiple_of(f)) {
        return Err(FrameError::BadAudio {
            bytes: data.len() as u64,
            channels,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_padded_to_the_layout_the_caps_promise() {
        // I420 6x2: rows of 6, 3 and 3 bytes; GStreamer pads them to 8, 4 and 4.
        let data: Vec<u8> = (0..12).collect();
        let planes = [
            Plane::new(&data[..6 * 2], 6, 1),
            Plane::new(&data[..3], 3, 1),
            Plane::new(&data[3..6], 3, 1),
        ];
        let frame = VideoFrame {
            format: PixelFormat::I420,
            width: 6,
            height: 2,
            planes: &planes,
            timestamp_us: None,
        };
        let padded = PlaneLayout {
            offsets: vec![0, 16, 20],
            strides: vec![8, 4, 4],
            size: 24,
        };
        let out = frame.validate_and_pack().unwrap().into_layout(&padded);
        assert_eq!(
            out,
            [
                0, 1, 2, 3, 4, 5, 0, 0, 6, 7, 8, 9, 10, 11, 0, 0, // Y
                0, 1, 2, 0, // U
                3, 4, 5, 0, // V
            ]
        );
        let tight = PlaneLayout {
            offsets: vec![0, 12, 15],
            strides: vec![6, 3, 3],
            size: 18,
        };
        let packed = frame.validate_and_pack().unwrap();
        let bytes = packed.bytes.clone();
        assert_eq!(packed.into_layout(&tight), bytes);
    }

    fn frame<'a>(format: PixelFormat, w: u32, h: u32, planes: &'a [Plane<'a>]) -> VideoFrame<'a> {
        VideoFrame {
            format,
            width: w,
            height: h,
            planes,
            timestamp_us: None,
        }
    }

    #[test]
    fn packed_buffers_split_and_pack_back_unchanged() {
        for format in PixelFormat::ALL {
            let len = format.packed_len(4, 2);
            let data: Vec<u8> = (0..len as u8).collect();
            let planes = packed_planes(format, 4, 2, &data).unwrap();
            let packed = frame(format, 4, 2, &planes).validate_and_pack().unwrap();
            assert_eq!(packed.bytes, data, "{format}");
        }
        assert_eq!(PixelFormat::I420.packed_len(4, 2), 8 + 2 + 2);
        assert_eq!(PixelFormat::Nv21.packed_len(4, 2), 8 + 4);
        assert_eq!(PixelFormat::Bgra.packed_len(4, 2), 32);
    }

    #[test]
    fn padded_rows_are_dropped_and_the_last_row_may_be_unpadded() {
        // 2x2 I420: luma stride 4 with an unpadded last row; chroma stride 2.
        let y = [1, 2, 9, 9, 3, 4];
        let (u, v) = ([5, 9], [6]);
        let planes = [
            Plane::new(&y, 4, 1),
            Plane::new(&u, 2, 1),
            Plane::new(&v, 2, 1),
        ];
        let packed = frame(PixelFormat::I420, 2, 2, &planes)
            .validate_and_pack()
            .unwrap();
        assert_eq!(packed.bytes, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn yuv_420_888_with_interleaved_chroma_becomes_i420() {
        // 4x4 as Android hands it with chroma pixel stride 2: U and V are views into one VU
        // buffer (NV21 memory), V first, each ending right after its last sample.
        let y: Vec<u8> = (0..4 * 8).map(|i| i as u8).collect(); // row stride 8
        let vu = [
            20, 10, 21, 11, 99, 99, 99, 99, // row 0: V U V U, then padding to stride 8
            22, 12, 23, 13,
        ];
        let planes = [
            Plane::new(&y[..3 * 8 + 4], 8, 1),
            Plane::new(&vu[1..], 8, 2),
            Plane::new(&vu[..11], 8, 2),
        ];
        let packed = frame(PixelFormat::Yuv420Flexible, 4, 4, &planes)
            .validate_and_pack()
            .unwrap();
        let luma: Vec<u8> = (0..4)
            .flat_map(|r| (0..4).map(move |c| (r * 8 + c) as u8))
            .collect();
        assert_eq!(&packed.bytes[..16], &luma[..]);
        assert_eq!(&packed.bytes[16..], &[10, 11, 12, 13, 20, 21, 22, 23]);
        assert_eq!(PixelFormat::Yuv420Flexible.gst_name(), "I420");
    }

    #[test]
    fn short_and_overlong_planes_are_rejected() {
        let y = vec![0u8; 16 * 16];
        let c = vec![0u8; 8 * 8];
        let short = [
            Plane::new(&y[..100], 16, 1),
            Plane::new(&c, 8, 1),
            Plane::new(&c, 8, 1),
        ];
        let err = frame(PixelFormat::I420, 16, 16, &short)
            .validate()
            .unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::WrongSize {
                    plane: 0,
                    min: 256,
                    max: 256,
                    actual: 100,
                    ..
                }
            ),
            "{err}"
        );
        let long = vec![0u8; 8 * 9];
        let over = [
            Plane::new(&y, 16, 1),
            Plane::new(&c, 8, 1),
            Plane::new(&long, 8, 1),
        ];
        let err = frame(PixelFormat::I420, 16, 16, &over)
            .validate()
            .unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::WrongSize {
                    plane: 2,
                    actual: 72,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn zero_odd_and_absurd_sizes_are_rejected() {
        for (w, h) in [(0, 480), (640, 0), (641, 480), (100_000, 2), (2, 100_000)] {
            let err = frame(PixelFormat::I420, w, h, &[]).validate().unwrap_err();
            assert_eq!(
                err,
                FrameError::BadDimensions {
                    width: w,
                    height: h
                }
            );
        }
        assert!(check_dimensions(PixelFormat::Rgba, 3, 3).is_ok());
        assert!(check_dimensions(PixelFormat::Nv21, 3, 4).is_err());
    }

    #[test]
    fn bad_strides_and_plane_counts_are_rejected() {
        let data = [0u8; 64];
        let short = [Plane::new(&data[..32], 4, 1), Plane::new(&data[..16], 8, 2)];
        assert!(matches!(
            frame(PixelFormat::Nv12, 8, 4, &short).validate(),
            Err(FrameError::StrideTooSmall {
                plane: 0,
                row_stride: 4,
                row: 8
            })
        ));
        let one = [Plane::new(&data[..32], 8, 1)];
        assert!(matches!(
            frame(PixelFormat::Nv12, 8, 4, &one).validate(),
            Err(FrameError::PlaneCount {
                expected: 2,
                given: 1,
                ..
            })
        ));
        let planar_nv12 = [Plane::new(&data[..32], 8, 1), Plane::new(&data[..16], 8, 1)];
        assert!(matches!(
            frame(PixelFormat::Nv12, 8, 4, &planar_nv12).validate(),
            Err(FrameError::BadPixelStride {
                plane: 1,
                pixel_stride: 1,
                ..
            })
        ));
        let three = [
            Plane::new(&data[..32], 8, 1),
            Plane::new(&data[..7], 4, 3),
            Plane::new(&data[..8], 4, 1),
        ];
        assert!(matches!(
            frame(PixelFormat::Yuv420Flexible, 8, 4, &three).validate(),
            Err(FrameError::BadPixelStride {
                plane: 1,
                pixel_stride: 3,
                ..
            })
        ));
    }

    #[test]
    fn unknown_pixel_formats_are_typed_errors() {
        assert_eq!("nv21".parse::<PixelFormat>().unwrap(), PixelFormat::Nv21);
        assert_eq!(
            "yuv_420_888".parse::<PixelFormat>().unwrap(),
            PixelFormat::Yuv420Flexible
        );
        for format in PixelFormat::ALL {
            assert_eq!(format.name().parse::<PixelFormat>().unwrap(), format);
        }
        assert_eq!(
            "YUY2".parse::<PixelFormat>(),
            Err(FrameError::UnsupportedFormat("YUY2".into()))
        );
    }

    #[test]
    fn audio_must_be_whole_frames() {
        assert!(check_audio(&[0; 8], 2).is_ok());
        assert!(check_audio(&[0; 6], 2).is_err());
        assert!(check_audio(&[], 1).is_err());
        assert!(check_audio(&[0; 8], 0).is_err());
        assert!(check_audio(&[0; 8], u32::MAX).is_err());
    }

    #[test]
    fn sizes_past_the_limits_saturate() {
        assert_eq!(PixelFormat::Rgba.packed_len(u32::MAX, u32::MAX), usize::MAX);
        assert_eq!(PixelFormat::I420.packed_len(u32::MAX, u32::MAX), usize::MAX);
    }
}
