//! App-pushed media: raw video frames and PCM audio, validated before they enter the pipeline.

use std::fmt;
use std::str::FromStr;

/// Largest accepted frame side, in pixels (8K UHD).
pub const MAX_WIDTH: u32 = 7680;
/// Largest accepted frame height, in pixels (8K UHD).
pub const MAX_HEIGHT: u32 = 4320;

/// Pixel layouts an app may push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Planar Y, U, V; chroma subsampled 2x2.
    I420,
    /// Planar Y, interleaved UV; chroma subsampled 2x2 (Android camera default).
    Nv12,
    /// Packed 8-bit R, G, B, A.
    Rgba,
}

impl PixelFormat {
    /// The GStreamer caps name of the format.
    pub fn gst_name(self) -> &'static str {
        match self {
            PixelFormat::I420 => "I420",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Rgba => "RGBA",
        }
    }

    /// Number of planes and, per plane, (minimum row bytes, row count) for a frame size.
    fn planes(self, width: u32, height: u32) -> Vec<(u32, u32)> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        match self {
            PixelFormat::I420 => vec![(width, height), (cw, ch), (cw, ch)],
            PixelFormat::Nv12 => vec![(width, height), (cw * 2, ch)],
            PixelFormat::Rgba => vec![(width * 4, height)],
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.gst_name())
    }
}

impl FromStr for PixelFormat {
    type Err = FrameError;
    fn from_str(s: &str) -> Result<Self, FrameError> {
        match s.to_ascii_uppercase().as_str() {
            "I420" | "YUV420P" => Ok(PixelFormat::I420),
            "NV12" => Ok(PixelFormat::Nv12),
            "RGBA" => Ok(PixelFormat::Rgba),
            _ => Err(FrameError::UnsupportedFormat(s.to_string())),
        }
    }
}

/// Why a pushed frame or audio buffer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The pixel format is not one FieldCast accepts.
    #[error("pixel format `{0}` is not supported (use I420, NV12 or RGBA)")]
    UnsupportedFormat(String),
    /// Width or height is zero, odd for a YUV format, or larger than 7680x4320.
    #[error("frame size {width}x{height} is invalid (1..=7680 x 1..=4320, even for I420 and NV12)")]
    BadDimensions { width: u32, height: u32 },
    /// The frame does not have the format or size the session was configured with.
    #[error("frame is {got} but the session takes {expected}")]
    Mismatch { got: String, expected: String },
    /// The number of strides does not match the format's planes.
    #[error("{format} has {planes} planes but {given} strides were given")]
    StrideCount {
        format: PixelFormat,
        planes: usize,
        given: usize,
    },
    /// A stride is shorter than the row it must hold.
    #[error("stride {stride} of plane {plane} is shorter than its {row} bytes of pixels")]
    StrideTooSmall { plane: usize, stride: u32, row: u32 },
    /// The buffer length does not match what format, size and strides declare.
    #[error("frame buffer holds {actual} bytes but {format} {width}x{height} needs {expected}")]
    WrongSize {
        format: PixelFormat,
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
    /// The audio buffer is empty or not whole S16LE samples for every channel.
    #[error(
        "audio buffer of {bytes} bytes is not a whole number of {channels}-channel S16LE frames"
    )]
    BadAudio { bytes: usize, channels: u32 },
    /// Media was pushed to a session whose source is not the app.
    #[error("this session does not take app-pushed media (its source is {0})")]
    NotAppSource(String),
}

/// One raw video frame as an app hands it over (camera callback, decoder, renderer).
#[derive(Debug, Clone, Copy)]
pub struct VideoFrame<'a> {
    /// Pixel layout of `data`.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row of each plane; empty means tightly packed.
    pub strides: &'a [u32],
    /// The planes, one after the other.
    pub data: &'a [u8],
    /// Capture time in microseconds on a monotonic clock shared with the audio; `None` stamps on arrival.
    pub timestamp_us: Option<u64>,
}

/// A frame laid out tightly, ready to become a GStreamer buffer.
pub(crate) struct PackedFrame {
    pub bytes: Vec<u8>,
}

impl VideoFrame<'_> {
    /// Checks the frame against itself (size, strides, buffer length) and returns it tightly packed.
    pub(crate) fn validate_and_pack(&self) -> Result<PackedFrame, FrameError> {
        check_dimensions(self.format, self.width, self.height)?;
        let planes = self.format.planes(self.width, self.height);
        let strides: Vec<u32> = if self.strides.is_empty() {
            planes.iter().map(|(row, _)| *row).collect()
        } else if self.strides.len() != planes.len() {
            return Err(FrameError::StrideCount {
                format: self.format,
                planes: planes.len(),
                given: self.strides.len(),
            });
        } else {
            self.strides.to_vec()
        };
        let mut expected = 0usize;
        for (plane, ((row, rows), stride)) in planes.iter().zip(&strides).enumerate() {
            if stride < row {
                return Err(FrameError::StrideTooSmall {
                    plane,
                    stride: *stride,
                    row: *row,
                });
            }
            expected += *stride as usize * *rows as usize;
        }
        if self.data.len() != expected {
            return Err(FrameError::WrongSize {
                format: self.format,
                width: self.width,
                height: self.height,
                expected,
                actual: self.data.len(),
            });
        }
        let packed_len: usize = planes.iter().map(|(r, n)| *r as usize * *n as usize).sum();
        let mut bytes = Vec::with_capacity(packed_len);
        let mut offset = 0usize;
        for ((row, rows), stride) in planes.iter().zip(&strides) {
            for line in 0..*rows as usize {
                let start = offset + line * *stride as usize;
                bytes.extend_from_slice(&self.data[start..start + *row as usize]);
            }
            offset += *stride as usize * *rows as usize;
        }
        Ok(PackedFrame { bytes })
    }
}

/// Checks that a frame size is usable for a format.
pub(crate) fn check_dimensions(
    format: PixelFormat,
    width: u32,
    height: u32,
) -> Result<(), FrameError> {
    let yuv = matches!(format, PixelFormat::I420 | PixelFormat::Nv12);
    if width == 0
        || height == 0
        || width > MAX_WIDTH
        || height > MAX_HEIGHT
        || (yuv && (!width.is_multiple_of(2) || !height.is_multiple_of(2)))
    {
        return Err(FrameError::BadDimensions { width, height });
    }
    Ok(())
}

/// Checks an interleaved S16LE buffer: non-empty and whole frames for every channel.
pub(crate) fn check_audio(data: &[u8], channels: u32) -> Result<(), FrameError> {
    let frame = 2 * channels as usize;
    if data.is_empty() || channels == 0 || !data.len().is_multiple_of(frame) {
        return Err(FrameError::BadAudio {
            bytes: data.len(),
            channels,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame<'a>(
        format: PixelFormat,
        w: u32,
        h: u32,
        strides: &'a [u32],
        data: &'a [u8],
    ) -> VideoFrame<'a> {
        VideoFrame {
            format,
            width: w,
            height: h,
            strides,
            data,
            timestamp_us: None,
        }
    }

    #[test]
    fn packed_sizes_match_each_format() {
        for (format, len) in [
            (PixelFormat::I420, 4 * 2 + 2 * 2),
            (PixelFormat::Nv12, 4 * 2 + 4),
            (PixelFormat::Rgba, 4 * 2 * 4),
        ] {
            let data = vec![7u8; len];
            let packed = frame(format, 4, 2, &[], &data).validate_and_pack().unwrap();
            assert_eq!(packed.bytes.len(), len, "{format}");
        }
    }

    #[test]
    fn strided_frame_is_packed_row_by_row() {
        // 2x2 I420 with 4-byte luma stride and 2-byte chroma strides: padding bytes are 9.
        let data = [1, 2, 9, 9, 3, 4, 9, 9, 5, 9, 6, 9];
        let packed = frame(PixelFormat::I420, 2, 2, &[4, 2, 2], &data)
            .validate_and_pack()
            .unwrap();
        assert_eq!(packed.bytes, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn wrong_buffer_length_is_rejected() {
        let data = vec![0u8; 100];
        let err = frame(PixelFormat::I420, 16, 16, &[], &data)
            .validate_and_pack()
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                FrameError::WrongSize {
                    expected: 384,
                    actual: 100,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn zero_odd_and_absurd_sizes_are_rejected() {
        for (w, h) in [(0, 480), (640, 0), (641, 480), (100_000, 2), (2, 100_000)] {
            let err = frame(PixelFormat::I420, w, h, &[], &[])
                .validate_and_pack()
                .err()
                .unwrap();
            assert_eq!(
                err,
                FrameError::BadDimensions {
                    width: w,
                    height: h
                }
            );
        }
        assert!(check_dimensions(PixelFormat::Rgba, 3, 3).is_ok());
    }

    #[test]
    fn bad_strides_are_rejected() {
        let data = vec![0u8; 64];
        let short = frame(PixelFormat::Nv12, 8, 4, &[4, 8], &data).validate_and_pack();
        assert!(matches!(
            short,
            Err(FrameError::StrideTooSmall { plane: 0, .. })
        ));
        let count = frame(PixelFormat::Nv12, 8, 4, &[8], &data).validate_and_pack();
        assert!(matches!(
            count,
            Err(FrameError::StrideCount {
                planes: 2,
                given: 1,
                ..
            })
        ));
    }

    #[test]
    fn unknown_pixel_formats_are_typed_errors() {
        assert_eq!("nv12".parse::<PixelFormat>().unwrap(), PixelFormat::Nv12);
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
    }
}
