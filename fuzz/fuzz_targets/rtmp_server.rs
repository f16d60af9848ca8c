//! What an RTMP server sends to a publisher: handshake bytes, chunk headers, protocol control
//! messages and AMF0 commands. Whatever it sends, in whatever pieces, the publisher answers with
//! a typed failure or goes on; it never panics, hangs or allocates without bound.
#![no_main]

use fieldcast_core::fuzzing::RtmpPublish;
use libfuzzer_sys::fuzz_target;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, from_server)) = data.split_first() else {
        return;
    };
    let mut publish = RtmpPublish::start("rtmp://ingest.example/live/key").expect("a valid URL");
    // Odd modes complete a real handshake first, so the bytes reach the chunk stream.
    if mode & 1 == 1 {
        let mut server = Handshake::new(PeerType::Server);
        let answer = match server.process_bytes(&publish.take_outbox()) {
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => response_bytes,
            other => panic!("the server handshake does not answer C0+C1: {other:?}"),
        };
        publish
            .receive(&answer)
            .expect("a real server's handshake completes");
    }
    // The rest arrives in pieces of `mode / 2` bytes (all at once for 0).
    let piece = usize::from(mode >> 1);
    let piece = if piece == 0 {
        from_server.len().max(1)
    } else {
        piece
    };
    for bytes in from_server.chunks(piece) {
        if publish.receive(bytes).is_err() {
            let _ = publish.closed_by_server();
            return;
        }
        let _ = publish.take_outbox();
    }
    let _ = publish.is_live();
});
