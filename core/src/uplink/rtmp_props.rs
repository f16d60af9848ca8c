//! Properties of the publisher against a hostile RTMP server: whatever bytes, chunk headers,
//! protocol control messages and AMF0 commands it sends, in whatever pieces, the publisher goes on
//! or fails with a typed cause; it never panics, and what it answers stays in proportion.

use std::collections::HashMap;

use proptest::collection::vec;
use proptest::prelude::*;
use rml_amf0::Amf0Value;
use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::{RtmpMessage, UserControlEventType};
use rml_rtmp::time::RtmpTimestamp;

use super::rtmp::{Phase, Publish, PublishPoint};
use super::rtmp_inbound::{MAX_AMF0_DEPTH, amf0_values};
use super::supervisor::LinkFailure;
use crate::error::IngestCause;

/// What the publisher may send besides answers: C0+C1, C2, `connect`, `createStream`, `publish`.
const SETUP_BYTES: usize = 8 * 1024;

fn start() -> Publish {
    let url = url::Url::parse("rtmp://ingest.example/live/key").expect("a valid URL");
    Publish::start(PublishPoint::of(&url).expect("an app and a stream")).expect("a handshake")
}

/// A publisher whose handshake with a real server is complete: what follows is chunk stream.
fn handshaken() -> Publish {
    let mut publish = start();
    let mut c0_c1 = Vec::new();
    publish.take_outbox(&mut c0_c1);
    let answer = match Handshake::new(PeerType::Server).process_bytes(&c0_c1) {
        Ok(HandshakeProcessResult::InProgress { response_bytes }) => response_bytes,
        other => panic!("the server handshake does not answer C0+C1: {other:?}"),
    };
    publish.receive(&answer).expect("a real server's handshake");
    assert_eq!(publish.phase(), Phase::Connect);
    publish
}

/// Feeds `bytes` in pieces of `piece` bytes until the first failure; checks that the publisher
/// answers no more than a few bytes for each byte received.
fn feed(publish: &mut Publish, bytes: &[u8], piece: usize) -> Result<(), LinkFailure> {
    let mut sent = Vec::new();
    let result = bytes.chunks(piece.max(1)).try_for_each(|bytes| {
        let result = publish.receive(bytes);
        publish.take_outbox(&mut sent);
        result
    });
    assert!(
        sent.len() <= SETUP_BYTES + 4 * bytes.len(),
        "{} bytes answered to {} received",
        sent.len(),
        bytes.len()
    );
    result
}

/// True for the causes of a failure that what a server sends can amount to (the others are
/// the network's).
fn from_the_server(cause: IngestCause) -> bool {
    matches!(
        cause,
        IngestCause::Handshake
            | IngestCause::Rejected
            | IngestCause::AlreadyPublishing
            | IngestCause::Other
    )
}

/// AMF0 values nested up to three levels.
fn amf0() -> impl Strategy<Value = Amf0Value> {
    let leaf = prop_oneof![
        any::<f64>().prop_map(Amf0Value::Number),
        any::<bool>().prop_map(Amf0Value::Boolean),
        prop_oneof![
            Just("NetStream.Publish.Start".to_owned()),
            Just("NetStream.Publish.BadName".to_owned()),
            Just("NetConnection.Connect.Rejected".to_owned()),
            ".{0,40}",
        ]
        .prop_map(Amf0Value::Utf8String),
        Just(Amf0Value::Null),
        Just(Amf0Value::Undefined),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Amf0Value::StrictArray),
            vec(
                (prop_oneof![Just("code".to_owned()), ".{1,12}"], inner),
                0..6
            )
            .prop_map(|pairs| Amf0Value::Object(pairs.into_iter().collect::<HashMap<_, _>>())),
        ]
    })
}

/// Messages a server sends, well formed.
fn message() -> impl Strategy<Value = RtmpMessage> {
    prop_oneof![
        (
            prop_oneof![
                Just("_result".to_owned()),
                Just("_error".to_owned()),
                Just("onStatus".to_owned()),
                Just("onBWDone".to_owned()),
                ".{0,12}",
            ],
            prop_oneof![Just(0.0), Just(1.0), Just(2.0), Just(3.0), any::<f64>()],
            amf0(),
            vec(amf0(), 0..4),
        )
            .prop_map(
                |(command_name, transaction_id, command_object, additional)| {
                    RtmpMessage::Amf0Command {
                        command_name,
                        transaction_id,
                        command_object,
                        additional_arguments: additional,
                    }
                }
            ),
        vec(amf0(), 0..4).prop_map(|values| RtmpMessage::Amf0Data { values }),
        prop_oneof![1u32..=512, any::<u32>()].prop_map(|size| RtmpMessage::SetChunkSize { size }),
        any::<u32>().prop_map(|size| RtmpMessage::WindowAcknowledgement { size }),
        any::<u32>().prop_map(|sequence_number| RtmpMessage::Acknowledgement { sequence_number }),
        any::<u32>().prop_map(|stream_id| RtmpMessage::Abort { stream_id }),
        (any::<u32>(), any::<u32>()).prop_map(|(stream_id, t)| RtmpMessage::UserControl {
            event_type: if t % 2 == 0 {
                UserControlEventType::PingRequest
            } else {
                UserControlEventType::StreamBegin
            },
            stream_id: Some(stream_id),
            buffer_length: None,
            timestamp: Some(RtmpTimestamp::new(t)),
        }),
        (any::<u8>(), vec(any::<u8>(), 0..64)).prop_map(|(type_id, data)| RtmpMessage::Unknown {
            type_id,
            data: data.into(),
        }),
    ]
}

/// Messages a server sends that need no answer and end nothing: commands the publisher does
/// not wait for, data, acknowledgements, pings, chunk sizes, types nobody reads.
fn benign_message() -> impl Strategy<Value = RtmpMessage> {
    prop_oneof![
        (
            prop_oneof![
                Just("onBWDone"),
                Just("onFCPublish"),
                Just("|RtmpSampleAccess")
            ],
            any::<f64>(),
            amf0(),
            vec(amf0(), 0..3),
        )
            .prop_map(|(name, transaction_id, command_object, additional)| {
                RtmpMessage::Amf0Command {
                    command_name: name.to_owned(),
                    transaction_id,
                    command_object,
                    additional_arguments: additional,
                }
            }),
        vec(amf0(), 0..4).prop_map(|values| RtmpMessage::Amf0Data { values }),
        prop_oneof![1u32..=512, 1u32..=1 << 16].prop_map(|size| RtmpMessage::SetChunkSize { size }),
        (1u32..).prop_map(|size| RtmpMessage::WindowAcknowledgement { size }),
        any::<u32>().prop_map(|sequence_number| RtmpMessage::Acknowledgement { sequence_number }),
        any::<u32>().prop_map(|t| RtmpMessage::UserControl {
            event_type: UserControlEventType::PingRequest,
            stream_id: None,
            buffer_length: None,
            timestamp: Some(RtmpTimestamp::new(t)),
        }),
        // Message types rml_rtmp passes on unread, in payloads of several chunks.
        (
            prop::sample::select(vec![7u8, 16, 19, 22]),
            vec(any::<u8>(), 0..700)
        )
            .prop_map(|(type_id, data)| RtmpMessage::Unknown {
                type_id,
                data: data.into()
            }),
    ]
}

/// The chunk stream of `messages` as rml_rtmp's serializer writes it (chunks of 128 bytes; the
/// serializer follows the chunk sizes it sends itself).
fn chunk_stream(messages: Vec<(RtmpMessage, u32, u32)>) -> Vec<u8> {
    let mut serializer = ChunkSerializer::new();
    let mut out = Vec::new();
    for (message, time, stream) in messages {
        let chunk_size = match message {
            RtmpMessage::SetChunkSize { size } => Some(size),
            _ => None,
        };
        let Ok(payload) = message.into_message_payload(RtmpTimestamp::new(time), stream) else {
            continue;
        };
        if let Ok(packet) = serializer.serialize(&payload, false, false) {
            out.extend_from_slice(&packet.bytes);
        }
        if let Some(size) = chunk_size.filter(|s| (1..=1 << 20).contains(s)) {
            serializer
                .set_max_chunk_size(size, RtmpTimestamp::new(time))
                .expect("a chunk size in range");
        }
    }
    out
}

/// Raw chunk headers of every format, chunk stream id width and timestamp, with any payload.
fn raw_chunk() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..4,
        prop_oneof![2u32..=63, 64u32..=319, 320u32..=65599],
        prop_oneof![0u32..=0xff_fffe, Just(0xff_ffff)],
        any::<u32>(),
        0u32..=300,
        prop_oneof![
            Just(1u8),
            Just(3),
            Just(4),
            Just(5),
            Just(6),
            Just(18),
            Just(20),
            any::<u8>()
        ],
        vec(any::<u8>(), 0..=160),
    )
        .prop_map(|(format, csid, time, extended, length, type_id, payload)| {
            let mut out = match csid {
                2..=63 => vec![format << 6 | csid as u8],
                64..=319 => vec![format << 6, (csid - 64) as u8],
                _ => vec![
                    format << 6 | 1,
                    ((csid - 64) & 0xff) as u8,
                    ((csid - 64) >> 8) as u8,
                ],
            };
            if format < 3 {
                out.extend_from_slice(&time.to_be_bytes()[1..]);
            }
            if format < 2 {
                out.extend_from_slice(&length.to_be_bytes()[1..]);
                out.push(type_id);
            }
            if format == 0 {
                out.extend_from_slice(&1u32.to_le_bytes());
            }
            if time == 0xff_ffff {
                out.extend_from_slice(&extended.to_be_bytes());
            }
            out.extend_from_slice(&payload);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_bytes_during_the_handshake_fail_typed_or_wait(
        bytes in vec(any::<u8>(), 0..=4096),
        piece in 1usize..=2048,
    ) {
        let mut publish = start();
        if let Err(failure) = feed(&mut publish, &bytes, piece) {
            prop_assert!(from_the_server(failure.cause), "{failure:?}");
        }
    }

    #[test]
    fn any_bytes_after_the_handshake_fail_typed_or_wait(
        bytes in vec(any::<u8>(), 0..=2048),
        piece in 1usize..=512,
    ) {
        let mut publish = handshaken();
        if let Err(failure) = feed(&mut publish, &bytes, piece) {
            prop_assert!(from_the_server(failure.cause), "{failure:?}");
        }
    }

    #[test]
    fn well_formed_messages_of_any_kind_are_answered_or_refused(
        messages in vec((message(), any::<u32>(), prop_oneof![Just(0u32), any::<u32>()]), 1..=8),
        piece in 1usize..=600,
    ) {
        let mut publish = handshaken();
        let bytes = chunk_stream(messages);
        if let Err(failure) = feed(&mut publish, &bytes, piece) {
            prop_assert!(from_the_server(failure.cause), "{failure:?}");
        }
    }

    #[test]
    fn benign_messages_in_any_pieces_are_read(
        messages in vec((benign_message(), any::<u32>(), prop_oneof![Just(0u32), any::<u32>()]), 1..=12),
        piece in 1usize..=600,
    ) {
        let mut publish = handshaken();
        let bytes = chunk_stream(messages);
        feed(&mut publish, &bytes, piece).map_err(|f| TestCaseError::fail(format!("{f:?}")))?;
    }

    #[test]
    fn raw_chunks_of_any_header_fail_typed_or_wait(
        chunks in vec(raw_chunk(), 1..=12),
        piece in 1usize..=600,
    ) {
        let mut publish = handshaken();
        if let Err(failure) = feed(&mut publish, &chunks.concat(), piece) {
            prop_assert!(from_the_server(failure.cause), "{failure:?}");
        }
    }
}

/// The depth of the deepest container in `value`.
fn depth(value: &Amf0Value) -> usize {
    match value {
        Amf0Value::Object(properties) => 1 + properties.values().map(depth).max().unwrap_or(0),
        Amf0Value::StrictArray(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn amf0_is_read_ahead_as_rml_amf0_reads_it(
        values in vec(amf0(), 0..4),
        cut in any::<prop::sample::Index>(),
        noise in vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = rml_amf0::serialize(&values).unwrap();
        bytes.truncate(cut.index(bytes.len() + 1));
        bytes.extend_from_slice(&noise);
        let read_ahead = amf0_values(&bytes);
        // Where rml_amf0 fails, reading ahead may not (it does not check strings for UTF-8).
        if let Ok(read) = rml_amf0::deserialize(&mut std::io::Cursor::new(&bytes)) {
            if read.iter().map(depth).max().unwrap_or(0) <= MAX_AMF0_DEPTH {
                prop_assert_eq!(read_ahead, Ok(read.len()));
            } else {
                prop_assert!(read_ahead.is_err());
            }
        }
    }
}

/// A type 0 chunk header on chunk stream `csid` (2..=63) for a message of `length` bytes.
fn full_header(csid: u8, time: u32, length: u32, type_id: u8) -> Vec<u8> {
    let mut out = vec![csid];
    out.extend_from_slice(&time.min(0xff_ffff).to_be_bytes()[1..]);
    out.extend_from_slice(&length.to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}

#[test]
fn a_chunk_stream_interleaved_mid_message_is_refused() {
    // The first 128-byte chunk of a 200-byte command, then a whole 10-byte message on another
    // chunk stream: shorter than what the first already holds.
    let mut bytes = full_header(3, 0, 200, 20);
    bytes.extend_from_slice(&[0x05; 128]);
    bytes.extend(full_header(4, 0, 10, 20));
    bytes.extend_from_slice(&[0x05; 10]);
    let mut publish = handshaken();
    let failure = feed(&mut publish, &bytes, bytes.len()).unwrap_err();
    assert!(from_the_server(failure.cause), "{failure:?}");
}

/// A whole message of `type_id` on chunk stream 3, in one chunk of a size set first.
fn one_chunk_message(type_id: u8, payload: &[u8]) -> Vec<u8> {
    let length = payload.len() as u32;
    let mut bytes = full_header(2, 0, 4, 1);
    bytes.extend_from_slice(&length.max(1).to_be_bytes());
    bytes.extend(full_header(3, 0, length, type_id));
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn an_extended_timestamp_delta_below_the_24_bit_field_is_refused() {
    // A message, then a type 1 header whose delta says "extended" and whose extended delta
    // does not need it: rml_rtmp subtracts 0xFFFFFF from it.
    let mut bytes = full_header(3, 0, 1, 8);
    bytes.push(0xaf);
    bytes.extend_from_slice(&[0x43, 0xff, 0xff, 0xff, 0, 0, 1, 8]);
    bytes.extend_from_slice(&5u32.to_be_bytes());
    bytes.push(0xaf);
    let mut publish = handshaken();
    let failure = feed(&mut publish, &bytes, bytes.len()).unwrap_err();
    assert!(failure.reason.contains("extended timestamp"), "{failure:?}");
}

#[test]
fn amf0_commands_of_fewer_than_three_values_are_refused() {
    // rml_rtmp drains the first three values of a command: fewer panicked.
    let name = rml_amf0::serialize(&vec![Amf0Value::Utf8String("_result".into())]).unwrap();
    for payload in [&[][..], &name[..], &[0x02, 0, 1, b'x', 0x09, 0, 0][..]] {
        for type_id in [20, 17] {
            let mut publish = handshaken();
            let bytes = one_chunk_message(type_id, payload);
            let failure = feed(&mut publish, &bytes, 7).unwrap_err();
            assert!(from_the_server(failure.cause), "{failure:?}");
        }
    }
}

#[test]
fn amf0_nested_without_bound_is_refused_before_it_is_parsed() {
    // 100 000 objects in objects: rml_amf0 would recurse once for each.
    let mut payload = rml_amf0::serialize(&vec![
        Amf0Value::Utf8String("onStatus".into()),
        Amf0Value::Number(0.0),
        Amf0Value::Null,
    ])
    .unwrap();
    for _ in 0..100_000 {
        payload.extend_from_slice(&[0x03, 0, 1, b'a']);
    }
    let mut publish = handshaken();
    let bytes = one_chunk_message(20, &payload);
    let failure = feed(&mut publish, &bytes, 4096).unwrap_err();
    assert!(failure.reason.contains("nested"), "{failure:?}");
}

#[test]
fn amf0_nested_as_deep_as_allowed_is_read() {
    let mut value = Amf0Value::Null;
    for _ in 0..MAX_AMF0_DEPTH {
        value = Amf0Value::Object(HashMap::from([("a".to_owned(), value)]));
    }
    let bytes = chunk_stream(vec![(
        RtmpMessage::Amf0Command {
            command_name: "onBWDone".into(),
            transaction_id: 0.0,
            command_object: Amf0Value::Null,
            additional_arguments: vec![value],
        },
        0,
        0,
    )]);
    let mut publish = handshaken();
    feed(&mut publish, &bytes, 100).unwrap();
}

/// Replays an input of the fuzz target `rtmp_server`: an odd first byte completes a real
/// handshake first, half of it is the size of the pieces the rest arrives in (0: at once).
fn replay_fuzz_input(input: &[u8]) -> Result<(), LinkFailure> {
    let (&mode, from_server) = input.split_first().expect("a mode byte");
    let mut publish = if mode & 1 == 1 { handshaken() } else { start() };
    let piece = match usize::from(mode >> 1) {
        0 => from_server.len(),
        piece => piece,
    };
    feed(&mut publish, from_server, piece)
}

#[test]
fn inputs_the_fuzzer_found_fail_typed() {
    // An AMF3-marked command of no bytes: rml_rtmp drained three values from none.
    let no_values = [
        0x01, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x09,
    ];
    // A chunk header whose 24-bit timestamp delta says "extended", then an extended delta of
    // 194: rml_rtmp subtracted 0xFFFFFF from it.
    let extended = [
        0x0f, 0x02, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x05, 0x15,
        0xc2, 0xc2, 0xc2, 0xc2, 0xc2, 0xc2, 0x00, 0x00, 0x00, 0xc2,
    ];
    // A message longer than the chunk size, cut short by a type 0 header on its chunk stream
    // for a shorter one: rml_rtmp subtracted the bytes it held from the new length.
    let mut interleaved = vec![
        0x01, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00,
        0x40, 0x00, 0x00, 0x00, 0x23, 0x00, 0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x02,
    ];
    interleaved.extend([0; 62]);
    interleaved.extend([
        0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x26, 0x25, 0xa0, 0x02, 0x06, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x1e, 0x14, 0x00, 0x00, 0x00, 0x00, 0x02,
    ]);
    interleaved.extend([0; 30]);
    interleaved.extend([0x65, 0x06, 0x09, 0x06]);
    for (input, why) in [
        (&no_values[..], "command of 0 values"),
        (&extended, "extended timestamp"),
        (&interleaved, "interleaved"),
    ] {
        let failure = replay_fuzz_input(input).unwrap_err();
        assert!(from_the_server(failure.cause), "{failure:?}");
        assert!(failure.reason.contains(why), "{failure:?}");
    }
}
