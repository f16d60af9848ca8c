//! Raw YUV4MPEG2 (y4m) files as a source. The header is read once; then each picture is read
//! from the file straight into a buffer of a pool, in GStreamer's layout, on the source's own
//! streaming thread: one `read` per picture, or one vectored read (`readv`, a span per row) where
//! GStreamer pads the rows (a 4:2:0 width that is not a multiple of 4, such as 854).
//!
//! This replaces `filesrc ! y4mdec`, whose fixed-size reads cut pictures apart: every picture that
//! spans two reads was joined by a copy, and every read went into freshly allocated memory.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, IoSliceMut, Read, Seek, SeekFrom};
use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::elements::make;
use crate::error::{Error, Result};
use crate::frame::PlaneLayout;

/// The first bytes of every y4m file.
const MAGIC: &[u8; 10] = b"YUV4MPEG2 ";
/// The longest header line accepted (the fields themselves take a few dozen bytes).
const HEADER_MAX: u64 = 4096;
/// The longest `FRAME` line accepted (parameters are rare and short).
const FRAME_LINE_MAX: usize = 1024;
/// The largest width or height accepted.
const SIZE_MAX: u32 = 16384;

/// What a y4m header says about the pictures that follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub width: u32,
    pub height: u32,
    /// Frames per second as a fraction.
    pub fps: (i32, i32),
    /// Pixel aspect ratio (1:1 when the file leaves it unknown).
    pub par: (i32, i32),
    pub format: gst_video::VideoFormat,
}

impl Header {
    /// Parses a header line (without its newline): `YUV4MPEG2 W854 H480 F30:1 Ip A1:1 C420jpeg`.
    pub fn parse(line: &str) -> std::result::Result<Header, String> {
        let fields = line
            .strip_prefix("YUV4MPEG2")
            .ok_or("it does not start with YUV4MPEG2")?;
        let (mut width, mut height, mut fps) = (None, None, None);
        let mut par = (1, 1);
        let mut format = gst_video::VideoFormat::I420;
        for field in fields.split_ascii_whitespace() {
            let mut chars = field.chars();
            let tag = chars.next().unwrap_or_default();
            let value = chars.as_str();
            match tag {
                'W' => width = Some(dimension("width", value)?),
                'H' => height = Some(dimension("height", value)?),
                'F' => fps = Some(ratio("frame rate", value)?),
                'A' => {
                    par = match ratio("pixel aspect ratio", value) {
                        Ok(r) => r,
                        Err(_) if value == "0:0" => (1, 1),
                        Err(e) => return Err(e),
                    }
                }
                'I' => {
                    if !matches!(value, "p" | "?") {
                        return Err(format!(
                            "interlaced pictures (I{value}) are not supported: \
                             deinterlace the file first (ffmpeg -vf yadif)"
                        ));
                    }
                }
                'C' => format = colour_space(value)?,
                // X: application-specific fields.
                'X' => {}
                _ => return Err(format!("unknown field {field:?}")),
            }
        }
        let (width, height) = (
            width.ok_or("it has no width (W)")?,
            height.ok_or("it has no height (H)")?,
        );
        let fps = fps.ok_or("it has no frame rate (F)")?;
        Ok(Header {
            width,
            height,
            fps,
            par,
            format,
        })
    }

    /// Each plane's row length in bytes and its rows, as the file packs them, in order.
    pub fn rows(&self) -> Vec<(usize, usize)> {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = match self.format {
            gst_video::VideoFormat::I420 => (w.div_ceil(2), h.div_ceil(2)),
            gst_video::VideoFormat::Y42b => (w.div_ceil(2), h),
            gst_video::VideoFormat::Y444 => (w, h),
            _ => return vec![(w, h)],
        };
        vec![(w, h), (cw, ch), (cw, ch)]
    }

    /// The caps of the pictures.
    pub fn caps(&self) -> gst::Caps {
        gst_video::VideoInfo::builder(self.format, self.width, self.height)
            .fps(gst::Fraction::new(self.fps.0, self.fps.1))
            .par(gst::Fraction::new(self.par.0, self.par.1))
            .build()
            .and_then(|info| info.to_caps())
            .expect("a checked y4m header has caps")
    }

    /// The start of picture `n` (nanoseconds).
    fn pts(&self, n: u64) -> gst::ClockTime {
        let ns = n as u128 * self.fps.1 as u128 * 1_000_000_000 / self.fps.0 as u128;
        gst::ClockTime::from_nseconds(ns as u64)
    }
}

fn dimension(what: &str, value: &str) -> std::result::Result<u32, String> {
    match value.parse::<u32>() {
        Ok(v) if (1..=SIZE_MAX).contains(&v) => Ok(v),
        _ => Err(format!(
            "its {what} {value:?} is not a number from 1 to {SIZE_MAX}"
        )),
    }
}

fn ratio(what: &str, value: &str) -> std::result::Result<(i32, i32), String> {
    value
        .split_once(':')
        .and_then(|(n, d)| Some((n.parse::<i32>().ok()?, d.parse::<i32>().ok()?)))
        .filter(|&(n, d)| n > 0 && d > 0)
        .ok_or_else(|| format!("its {what} {value:?} is not N:D with N and D above 0"))
}

fn colour_space(value: &str) -> std::result::Result<gst_video::VideoFormat, String> {
    match value {
        "420jpeg" | "420mpeg2" | "420paldv" | "420" => Ok(gst_video::VideoFormat::I420),
        "422" => Ok(gst_video::VideoFormat::Y42b),
        "444" => Ok(gst_video::VideoFormat::Y444),
        "mono" => Ok(gst_video::VideoFormat::Gray8),
        _ => Err(format!(
            "its colour space C{value} is not supported (8-bit 4:2:0, 4:2:2, 4:4:4 and mono are)"
        )),
    }
}

/// True when the file at `path` is a YUV4MPEG2 stream.
pub(crate) fn is_y4m(path: &Path) -> bool {
    let mut head = [0u8; MAGIC.len()];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == MAGIC)
}

/// An open y4m file, positioned at its next picture.
struct Y4mFile {
    file: File,
    /// Pictures read so far.
    read: u64,
}

impl Y4mFile {
    /// Opens `path` and reads its header.
    fn open(path: &Path) -> std::result::Result<(Y4mFile, Header), String> {
        let mut file = File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
        let mut line = Vec::new();
        BufReader::new((&mut file).take(HEADER_MAX))
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read its header: {e}"))?;
        if line.last() != Some(&b'\n') {
            return Err(format!("its header has no end within {HEADER_MAX} bytes"));
        }
        let text = std::str::from_utf8(&line[..line.len() - 1])
            .map_err(|_| "its header is not text".to_string())?;
        let header = Header::parse(text).map_err(|e| format!("its y4m header is unusable: {e}"))?;
        file.seek(SeekFrom::Start(line.len() as u64))
            .map_err(|e| format!("cannot read it: {e}"))?;
        Ok((Y4mFile { file, read: 0 }, header))
    }

    /// Reads the next picture into `out`, its bytes in order into `spans` (see
    /// [`PlaneLayout::spans`]): false at the end of the file, an error for a file that ends
    /// inside a picture or lacks a `FRAME` line.
    fn read_picture(
        &mut self,
        out: &mut [u8],
        spans: &[(usize, usize)],
    ) -> std::result::Result<bool, String> {
        let n = self.read;
        let mut line = [0u8; 6];
        match fill(&mut self.file, &mut line) {
            Ok(0) => return Ok(false),
            Ok(6) if &line[..5] == b"FRAME" => {}
            Ok(_) => return Err(format!("picture {n} does not start with a FRAME line")),
            Err(e) => return Err(format!("cannot read picture {n}: {e}")),
        }
        if line[5] != b'\n' {
            self.skip_frame_parameters(n)?;
        }
        let picture_len: usize = spans.iter().map(|&(_, len)| len).sum();
        match fill_spans(&mut self.file, out, spans) {
            Ok(got) if got == picture_len => {
                self.read += 1;
                Ok(true)
            }
            Ok(got) => Err(format!(
                "the file ends inside picture {n}: {got} of its {picture_len} bytes are there"
            )),
            Err(e) => Err(format!("cannot read picture {n}: {e}")),
        }
    }

    /// Skips the rest of a `FRAME` line that carries parameters.
    fn skip_frame_parameters(&mut self, n: u64) -> std::result::Result<(), String> {
        let mut byte = [0u8; 1];
        for _ in 0..FRAME_LINE_MAX {
            match fill(&mut self.file, &mut byte) {
                Ok(1) if byte[0] == b'\n' => return Ok(()),
                Ok(1) => {}
                Ok(_) => return Err(format!("the file ends inside picture {n}'s FRAME line")),
                Err(e) => return Err(format!("cannot read picture {n}: {e}")),
            }
        }
        Err(format!(
            "picture {n}'s FRAME line is longer than {FRAME_LINE_MAX} bytes"
        ))
    }
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn fill(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let len = buf.len();
    fill_spans(file, buf, &[(0, len)])
}

/// Reads into `spans` of `out` (ascending, disjoint) until they are full or the file ends, with
/// vectored reads; the bytes read.
fn fill_spans(file: &mut File, out: &mut [u8], spans: &[(usize, usize)]) -> std::io::Result<usize> {
    let mut slices = Vec::with_capacity(spans.len());
    let (mut rest, mut at) = (out, 0);
    for &(offset, len) in spans {
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(offset - at);
        let (span, tail) = tail.split_at_mut(len);
        slices.push(IoSliceMut::new(span));
        (rest, at) = (tail, offset + len);
    }
    let mut bufs = &mut slices[..];
    let mut got = 0;
    while !bufs.is_empty() {
        match file.read_vectored(bufs) {
            Ok(0) => break,
            Ok(k) => {
                got += k;
                IoSliceMut::advance_slices(&mut bufs, k);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Pool buffers kept ready: one being read, one on its way to the encoder.
const POOL_MIN_BUFFERS: u32 = 2;

/// Adds an appsrc named `name` that plays the y4m file at `path`: pictures timestamped from 0 at
/// the file's frame rate (paced downstream), end of stream after the last one; with the file's
/// header. A file that cannot be read or whose header is unusable is [`Error::SourceUnavailable`]
/// here; one that breaks off later fails the session with the same error, saying which picture.
pub(crate) fn add_source(
    pipeline: &gst::Pipeline,
    path: &Path,
    name: &str,
) -> Result<(gst::Element, Header)> {
    let unavailable = |e: String| Error::SourceUnavailable(format!("{}: {e}", path.display()));
    let (mut file, header) = Y4mFile::open(path).map_err(unavailable)?;
    let caps = header.caps();
    let info = gst_video::VideoInfo::from_caps(&caps)
        .map_err(|e| unavailable(format!("its pictures have no GStreamer layout: {e}")))?;
    let layout = PlaneLayout::of(&info);
    let spans = layout.spans(&header.rows());
    let pool = gst::BufferPool::new();
    let mut config = pool.config();
    config.set_params(Some(&caps), layout.size as u32, POOL_MIN_BUFFERS, 0);
    pool.set_config(config)
        .and_then(|()| pool.set_active(true))
        .map_err(|e| unavailable(format!("no buffer pool for its pictures: {e}")))?;

    let src = make("appsrc", name)?
        .downcast::<gst_app::AppSrc>()
        .expect("appsrc is an AppSrc");
    src.set_caps(Some(&caps));
    src.set_format(gst::Format::Time);
    src.set_is_live(false);
    src.set_property("max-buffers", u64::from(POOL_MIN_BUFFERS));
    let mut failed = false;
    let display = path.display().to_string();
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                if failed {
                    return;
                }
                let picture = file.read;
                let read = pool
                    .acquire_buffer(None)
                    .map_err(|e| format!("no buffer for picture {picture}: {e:?}"))
                    .and_then(|mut buffer| {
                        let more = {
                            let writable = buffer.get_mut().expect("a new pool buffer is writable");
                            let mut map = writable
                                .map_writable()
                                .map_err(|e| format!("cannot map a buffer: {e}"))?;
                            file.read_picture(&mut map, &spans)?
                        };
                        Ok(more.then_some(buffer))
                    });
                match read {
                    Ok(Some(mut buffer)) => {
                        let b = buffer.get_mut().expect("the buffer is still ours");
                        let (start, end) = (header.pts(picture), header.pts(picture + 1));
                        b.set_pts(start);
                        b.set_duration(end - start);
                        let _ = src.push_buffer(buffer);
                    }
                    Ok(None) => {
                        let _ = src.end_of_stream();
                    }
                    Err(message) => {
                        failed = true;
                        gst::element_error!(
                            src,
                            gst::ResourceError::Read,
                            ("{display}: {message}")
                        );
                    }
                }
            })
            .build(),
    );
    pipeline.add(&src).map_err(super::sources::link_err)?;
    Ok((src.upcast(), header))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of one picture in the file.
    fn picture_len(header: &Header) -> usize {
        header.rows().iter().map(|(row, n)| row * n).sum()
    }

    #[test]
    fn headers_are_read_with_their_defaults() {
        let h = Header::parse("YUV4MPEG2 W854 H480 F30000:1001 Ip A0:0 C420jpeg XYSCSS=420JPEG")
            .unwrap();
        assert_eq!(
            (h.width, h.height, h.fps, h.par),
            (854, 480, (30000, 1001), (1, 1))
        );
        assert_eq!(h.format, gst_video::VideoFormat::I420);
        assert_eq!(h.rows(), vec![(854, 480), (427, 240), (427, 240)]);
        assert_eq!(picture_len(&h), 854 * 480 + 2 * 427 * 240);

        let h = Header::parse("YUV4MPEG2 W5 H3 F25:1 A10:11").unwrap();
        assert_eq!(
            h.format,
            gst_video::VideoFormat::I420,
            "4:2:0 is the default"
        );
        assert_eq!(h.par, (10, 11));
        assert_eq!(h.rows(), vec![(5, 3), (3, 2), (3, 2)], "odd sizes round up");

        let h = Header::parse("YUV4MPEG2 W4 H2 F1:1 C422").unwrap();
        assert_eq!(h.rows(), vec![(4, 2), (2, 2), (2, 2)]);
        let h = Header::parse("YUV4MPEG2 W4 H2 F1:1 C444").unwrap();
        assert_eq!(picture_len(&h), 24);
        let h = Header::parse("YUV4MPEG2 W4 H2 F1:1 Cmono").unwrap();
        assert_eq!(h.rows(), vec![(4, 2)]);
    }

    #[test]
    fn unusable_headers_say_what_is_wrong() {
        for (line, says) in [
            ("YUV4MPEG W4 H2 F1:1", "YUV4MPEG2"),
            ("YUV4MPEG2 H2 F1:1", "width"),
            ("YUV4MPEG2 W4 F1:1", "height"),
            ("YUV4MPEG2 W4 H2", "frame rate"),
            ("YUV4MPEG2 W0 H2 F1:1", "width"),
            ("YUV4MPEG2 W99999 H2 F1:1", "width"),
            ("YUV4MPEG2 W4 H2 F30:0", "frame rate"),
            ("YUV4MPEG2 W4 H2 F1:1 It", "interlaced"),
            ("YUV4MPEG2 W4 H2 F1:1 C420p10", "C420p10"),
            ("YUV4MPEG2 W4 H2 F1:1 Z9", "unknown field"),
        ] {
            let err = Header::parse(line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
    }

    #[test]
    fn padded_rows_are_read_into_their_places() {
        gst::init().unwrap();
        // I420 6x2: GStreamer pads luma rows to 8 bytes and chroma rows to 4.
        let header = Header::parse("YUV4MPEG2 W6 H2 F1:1").unwrap();
        let info = gst_video::VideoInfo::from_caps(&header.caps()).unwrap();
        let layout = PlaneLayout::of(&info);
        let rows = header.rows();
        assert!(!layout.is_packed(&rows));
        let places = layout.spans(&rows);
        assert_eq!(
            places.len(),
            4,
            "two luma rows, one row per chroma plane: {places:?}"
        );
        let picture: Vec<u8> = (1..=picture_len(&header) as u8).collect();
        let mut bytes = b"YUV4MPEG2 W6 H2 F1:1\nFRAME\n".to_vec();
        bytes.extend(&picture);
        let f = file_with(&bytes);
        let (mut file, _) = Y4mFile::open(f.path()).unwrap();
        let mut read = vec![0u8; layout.size];
        assert_eq!(file.read_picture(&mut read, &places), Ok(true));
        // Luma rows at 0 and 8, U at 16, V at 20; padding left at zero.
        let placed: Vec<u8> = [
            &[1, 2, 3, 4, 5, 6, 0, 0][..],
            &[7, 8, 9, 10, 11, 12, 0, 0],
            &[13, 14, 15, 0],
            &[16, 17, 18, 0],
        ]
        .concat();
        assert_eq!(read, placed);

        let packed = Header::parse("YUV4MPEG2 W8 H2 F1:1").unwrap();
        let info = gst_video::VideoInfo::from_caps(&packed.caps()).unwrap();
        assert_eq!(
            PlaneLayout::of(&info).spans(&packed.rows()),
            vec![(0, picture_len(&packed))],
            "rows without padding are one span"
        );
    }

    #[test]
    fn pictures_are_timed_by_the_frame_rate_without_drift() {
        let h = Header::parse("YUV4MPEG2 W4 H2 F30000:1001").unwrap();
        assert_eq!(h.pts(0), gst::ClockTime::ZERO);
        assert_eq!(h.pts(30000).nseconds(), 1001 * 1_000_000_000);
    }

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    }

    #[test]
    fn pictures_are_read_whole_and_a_cut_picture_is_an_error() {
        let mut bytes = b"YUV4MPEG2 W2 H2 F1:1 C420\n".to_vec();
        bytes.extend(b"FRAME\n");
        bytes.extend([1, 2, 3, 4, 5, 6]);
        bytes.extend(b"FRAME Ixyz\n");
        bytes.extend([7, 8, 9, 10, 11, 12]);
        let whole = file_with(&bytes);
        let (mut file, header) = Y4mFile::open(whole.path()).unwrap();
        assert_eq!(picture_len(&header), 6);
        let mut out = [0u8; 8];
        assert_eq!(file.read_picture(&mut out, &[(0, 6)]), Ok(true));
        assert_eq!(out[..6], [1, 2, 3, 4, 5, 6]);
        assert_eq!(
            file.read_picture(&mut out, &[(0, 6)]),
            Ok(true),
            "FRAME parameters are skipped"
        );
        assert_eq!(out[..6], [7, 8, 9, 10, 11, 12]);
        assert_eq!(
            file.read_picture(&mut out, &[(0, 6)]),
            Ok(false),
            "the end is no error"
        );

        bytes.extend(b"FRAME\n");
        bytes.extend([13, 14]);
        let cut = file_with(&bytes);
        let (mut file, _) = Y4mFile::open(cut.path()).unwrap();
        file.read_picture(&mut out, &[(0, 6)]).unwrap();
        file.read_picture(&mut out, &[(0, 6)]).unwrap();
        let err = file.read_picture(&mut out, &[(0, 6)]).unwrap_err();
        assert!(err.contains("inside picture 2: 2 of its 6 bytes"), "{err}");

        let garbage = file_with(b"YUV4MPEG2 W2 H2 F1:1\nFRAMX\n123456");
        let (mut file, _) = Y4mFile::open(garbage.path()).unwrap();
        let err = file.read_picture(&mut out, &[(0, 6)]).unwrap_err();
        assert!(err.contains("FRAME line"), "{err}");

        let endless = file_with(&[b'Y'; 5000]);
        assert!(Y4mFile::open(endless.path()).is_err());
    }
}
