//! What an RTMP server sends after the handshake, read ahead of `rml_rtmp` to refuse what it
//! cannot read safely. `rml_rtmp` 0.8 keeps one payload buffer for all chunk streams and reads
//! AMF0 recursively, so a hostile or broken server could make it panic (a chunk stream
//! interleaved mid-message, an extended timestamp below 0xFFFFFF, an AMF0 command of fewer
//! than three values) or overflow the stack (AMF0 nested without bound). This reader follows the
//! chunk stream exactly as `rml_rtmp` does, byte for byte, and refuses those inputs, and anything
//! `rml_rtmp` would refuse anyway, before it sees them.

use std::collections::HashMap;

/// The chunk size until the server sets another (RTMP 5.4.1).
const INITIAL_CHUNK_SIZE: usize = 128;
/// A 24-bit timestamp field of this value says an extended timestamp follows.
const EXTENDED: u32 = 0xff_ffff;
/// The largest chunk size a server may set (RTMP 5.4.1: 31 bits).
const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;
/// The deepest AMF0 nesting accepted; servers' commands nest two or three levels.
pub(crate) const MAX_AMF0_DEPTH: usize = 32;

/// RTMP message types this reader looks into.
const SET_CHUNK_SIZE: u8 = 1;
const AMF3_DATA: u8 = 15;
const AMF3_COMMAND: u8 = 17;
const AMF0_DATA: u8 = 18;
const AMF0_COMMAND: u8 = 20;

/// What a chunk header says about its chunk stream, kept for the headers that follow.
#[derive(Debug, Clone, Copy)]
struct Header {
    length: u32,
    type_id: u8,
    /// The last 24-bit timestamp field: at [`EXTENDED`], every chunk carries 4 more bytes.
    timestamp_field: u32,
}

/// The message being received: its chunk stream and what has arrived of it.
struct Message {
    csid: u32,
    received: usize,
    /// The payload, kept only for the message types read here.
    payload: Vec<u8>,
}

/// The server's chunk stream as `rml_rtmp` reads it.
pub(crate) struct InboundCheck {
    chunk_size: usize,
    headers: HashMap<u32, Header>,
    message: Option<Message>,
    /// Bytes of a chunk not complete yet.
    pending: Vec<u8>,
}

impl InboundCheck {
    /// A reader at the start of the chunk stream.
    pub fn new() -> Self {
        InboundCheck {
            chunk_size: INITIAL_CHUNK_SIZE,
            headers: HashMap::new(),
            message: None,
            pending: Vec::new(),
        }
    }

    /// Reads `bytes`, the next of the chunk stream; why they cannot be handed to `rml_rtmp`.
    pub fn read(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(bytes);
        let mut at = 0;
        while let Some(used) = self.chunk(&pending[at..])? {
            at += used;
        }
        pending.drain(..at);
        self.pending = pending;
        Ok(())
    }

    /// Reads one chunk from the start of `bytes`: its length, or `None` until it is complete.
    fn chunk(&mut self, bytes: &[u8]) -> Result<Option<usize>, String> {
        let mut cursor = Cursor(bytes);
        let Some(first) = cursor.take(1) else {
            return Ok(None);
        };
        let format = first[0] >> 6;
        let csid = match first[0] & 0x3f {
            0 => match cursor.take(1) {
                Some(b) => u32::from(b[0]) + 64,
                None => return Ok(None),
            },
            1 => match cursor.take(2) {
                Some(b) => u32::from(b[1]) * 256 + u32::from(b[0]) + 64,
                None => return Ok(None),
            },
            n => u32::from(n),
        };
        if let Some(message) = &self.message
            && (message.csid != csid || format != 3)
        {
            return Err(format!(
                "a chunk of format {format} on chunk stream {csid} in the middle of a message on \
                 chunk stream {} (interleaved chunk streams)",
                message.csid
            ));
        }
        let mut header = match (format, self.headers.get(&csid)) {
            (0, _) => Header {
                length: 0,
                type_id: 0,
                timestamp_field: 0,
            },
            (_, Some(previous)) => *previous,
            (_, None) => {
                return Err(format!(
                    "a chunk of format {format} on chunk stream {csid}, which has no header yet"
                ));
            }
        };
        if format < 3 {
            let Some(field) = cursor.u24() else {
                return Ok(None);
            };
            header.timestamp_field = field;
        }
        if format < 2 {
            let (Some(length), Some(type_id)) = (cursor.u24(), cursor.take(1)) else {
                return Ok(None);
            };
            header.length = length;
            header.type_id = type_id[0];
        }
        if format == 0 && cursor.take(4).is_none() {
            return Ok(None);
        }
        if header.timestamp_field >= EXTENDED {
            let Some(extended) = cursor.take(4) else {
                return Ok(None);
            };
            let extended = u32::from_be_bytes(extended.try_into().expect("four bytes"));
            if format != 0 && extended < EXTENDED {
                return Err(format!(
                    "an extended timestamp delta of {extended} on chunk stream {csid}, \
                     which fits the 24-bit field"
                ));
            }
        }
        let length = header.length as usize;
        let received = self.message.as_ref().map_or(0, |m| m.received);
        let size = if length > self.chunk_size {
            (length - received).min(self.chunk_size)
        } else {
            length
        };
        let Some(data) = cursor.take(size) else {
            return Ok(None);
        };
        self.headers.insert(csid, header);
        let kept = matches!(
            header.type_id,
            SET_CHUNK_SIZE | AMF3_DATA | AMF3_COMMAND | AMF0_DATA | AMF0_COMMAND
        );
        let message = self.message.get_or_insert_with(|| Message {
            csid,
            received: 0,
            payload: Vec::new(),
        });
        message.received += data.len();
        if kept {
            message.payload.extend_from_slice(data);
        }
        if message.received == length {
            let message = self.message.take().expect("a message in progress");
            self.complete(header.type_id, &message.payload)?;
        }
        Ok(Some(cursor.used(bytes)))
    }

    /// Checks a whole message as `rml_rtmp` will read it, and follows chunk size changes.
    fn complete(&mut self, type_id: u8, payload: &[u8]) -> Result<(), String> {
        match type_id {
            SET_CHUNK_SIZE => match payload.get(..4) {
                Some(size) => {
                    let size = u32::from_be_bytes(size.try_into().expect("four bytes"));
                    if size == 0 || size > MAX_CHUNK_SIZE {
                        return Err(format!("a chunk size of {size}, outside 1..=2^31 - 1"));
                    }
                    self.chunk_size = size as usize;
                    Ok(())
                }
                None => Err(format!("a chunk size in {} bytes", payload.len())),
            },
            AMF0_COMMAND => command(payload),
            // A command marked AMF3 is AMF0 after a leading 0, as rml_rtmp reads it.
            AMF3_COMMAND => match payload.split_first() {
                Some((0, rest)) => command(rest),
                _ => command(payload),
            },
            AMF0_DATA | AMF3_DATA => amf0_values(payload).map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// An AMF0 command: a name, a transaction id and a command object at least.
fn command(payload: &[u8]) -> Result<(), String> {
    match amf0_values(payload)? {
        values if values >= 3 => Ok(()),
        values => Err(format!(
            "an AMF0 command of {values} values (name, transaction and command object needed)"
        )),
    }
}

/// A container being read in [`amf0_values`].
enum Container {
    Object,
    /// A strict array, with the count of values still to read.
    Array(u32),
}

/// Reads AMF0 values as `rml_amf0` does (up to the end or an object-end marker at the top);
/// how many there are at the top, or why `rml_amf0` would fail or recurse too deep on them.
pub(crate) fn amf0_values(bytes: &[u8]) -> Result<usize, String> {
    let bad = || "malformed AMF0".to_owned();
    let mut cursor = Cursor(bytes);
    let mut open: Vec<Container> = Vec::new();
    let mut values = 0;
    loop {
        let marker = match open.last_mut() {
            None => match cursor.take(1) {
                None | Some([0x09]) => return Ok(values),
                Some(marker) => {
                    values += 1;
                    marker[0]
                }
            },
            Some(Container::Object) => {
                let label = cursor.u16().ok_or_else(bad)?;
                if label == 0 {
                    match cursor.take(1) {
                        Some([0x09]) => {
                            open.pop();
                            continue;
                        }
                        _ => return Err(bad()),
                    }
                }
                cursor.take_up_to(usize::from(label));
                match cursor.take(1) {
                    None | Some([0x09]) => return Err(bad()),
                    Some(marker) => marker[0],
                }
            }
            Some(Container::Array(0)) => {
                open.pop();
                continue;
            }
            Some(Container::Array(left)) => {
                *left -= 1;
                match cursor.take(1) {
                    None | Some([0x09]) => {
                        open.pop();
                        continue;
                    }
                    Some(marker) => marker[0],
                }
            }
        };
        match marker {
            0x00 => cursor.take(8).map(|_| ()).ok_or_else(bad)?,
            0x01 => cursor.take(1).map(|_| ()).ok_or_else(bad)?,
            0x02 => {
                let len = cursor.u16().ok_or_else(bad)?;
                cursor.take_up_to(usize::from(len));
            }
            0x05 | 0x06 => {}
            0x03 => open.push(Container::Object),
            0x08 => {
                cursor.take(4).ok_or_else(bad)?;
                open.push(Container::Object);
            }
            0x0a => {
                let count = cursor.take(4).ok_or_else(bad)?;
                open.push(Container::Array(u32::from_be_bytes(
                    count.try_into().expect("four bytes"),
                )));
            }
            other => return Err(format!("an unknown AMF0 marker {other:#04x}")),
        }
        if open.len() > MAX_AMF0_DEPTH {
            return Err(format!("AMF0 nested deeper than {MAX_AMF0_DEPTH} levels"));
        }
    }
}

/// Reads big-endian fields from the front of a byte slice.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    /// The next `n` bytes, or `None` (and nothing taken) when fewer are left.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    /// Up to `n` bytes: what is left when fewer are (a string cut short reads as what arrived).
    fn take_up_to(&mut self, n: usize) {
        self.0 = &self.0[n.min(self.0.len())..];
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<u32> {
        self.take(3)
            .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    /// Bytes taken since the cursor was made over `from`.
    fn used(&self, from: &[u8]) -> usize {
        from.len() - self.0.len()
    }
}
