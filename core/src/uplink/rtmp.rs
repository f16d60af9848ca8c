//! The RTMP publish conversation, without I/O: handshake, `connect`, `createStream`, `publish`,
//! then media messages. The protocol itself (handshake, chunk stream, AMF0 commands,
//! acknowledgements, chunk size) is `rml_rtmp`'s; this module drives it for one publish and
//! turns the server's answers into typed outcomes. Bytes to send collect in an outbox that the
//! connection writes out at the pace the socket allows.

use std::time::Duration;

use bytes::Bytes;
use rml_amf0::Amf0Value;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    PublishRequestType, StreamMetadata,
};
use rml_rtmp::time::RtmpTimestamp;

use super::rtmp_inbound::InboundCheck;
use super::supervisor::LinkFailure;
use crate::error::IngestCause;

/// Where the conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Handshake bytes are being exchanged.
    Handshake,
    /// `connect` was sent; waiting for its answer.
    Connect,
    /// `createStream` and `publish` were sent; waiting for `NetStream.Publish.Start`.
    Publish,
    /// The server accepted the publish: media may flow.
    Live,
}

/// The application, stream name and tcUrl of an `rtmp[s]://host[:port]/app[/...]/stream` URL.
/// Its `Debug` hides the stream name (the stream key).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PublishPoint {
    pub app: String,
    pub stream: String,
    pub tc_url: String,
}

impl std::fmt::Debug for PublishPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishPoint")
            .field("app", &self.app)
            .field("stream", &"***")
            .field("tc_url", &self.tc_url)
            .finish()
    }
}

impl PublishPoint {
    /// Splits a parsed RTMP URL: the last path segment (with the query) is the stream name, the
    /// rest of the path the application.
    pub fn of(url: &url::Url) -> Option<Self> {
        let path = url.path().trim_matches('/');
        let (app, stream) = path.rsplit_once('/')?;
        if app.is_empty() || stream.is_empty() {
            return None;
        }
        let stream = match url.query() {
            Some(query) => format!("{stream}?{query}"),
            None => stream.to_string(),
        };
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let tc_url = format!("{}://{}{}/{}", url.scheme(), url.host_str()?, port, app);
        Some(PublishPoint {
            app: app.to_string(),
            stream,
            tc_url,
        })
    }
}

/// The publishing side of one RTMP connection.
pub(crate) struct Publish {
    point: PublishPoint,
    handshake: Handshake,
    session: Option<ClientSession>,
    /// The server's chunk stream, read ahead of the session.
    inbound: InboundCheck,
    phase: Phase,
    outbox: Vec<u8>,
}

impl Publish {
    /// Starts the conversation: the first handshake bytes wait in the outbox.
    pub fn start(point: PublishPoint) -> Result<Self, LinkFailure> {
        let mut handshake = Handshake::new(PeerType::Client);
        let outbox = handshake
            .generate_outbound_p0_and_p1()
            .map_err(|e| handshake_failure(format!("{e:?}")))?;
        Ok(Publish {
            point,
            handshake,
            session: None,
            inbound: InboundCheck::new(),
            phase: Phase::Handshake,
            outbox,
        })
    }

    /// Where the conversation stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Moves the bytes waiting to be sent into `out`.
    pub fn take_outbox(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.outbox);
    }

    /// Takes bytes from the server; returns an error the server's answers amount to.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), LinkFailure> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.session.is_none() {
            match self
                .handshake
                .process_bytes(bytes)
                .map_err(|e| handshake_failure(format!("{e:?}")))?
            {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.outbox.extend_from_slice(&response_bytes);
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    self.outbox.extend_from_slice(&response_bytes);
                    self.open_session()?;
                    return self.receive_messages(&remaining_bytes);
                }
            }
            return Ok(());
        }
        self.receive_messages(bytes)
    }

    fn open_session(&mut self) -> Result<(), LinkFailure> {
        let mut config = ClientSessionConfig::new();
        config.flash_version = "FMLE/3.0 (compatible; FieldCast)".into();
        config.tc_url = Some(self.point.tc_url.clone());
        let (mut session, results) = ClientSession::new(config).map_err(protocol_failure)?;
        let connect = session
            .request_connection(self.point.app.clone())
            .map_err(protocol_failure)?;
        self.session = Some(session);
        self.phase = Phase::Connect;
        self.apply(results)?;
        self.apply(vec![connect])
    }

    fn receive_messages(&mut self, bytes: &[u8]) -> Result<(), LinkFailure> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.inbound
            .read(bytes)
            .map_err(|why| self.malformed(format!("the ingest sent {why}")))?;
        let session = self.session.as_mut().expect("the handshake is complete");
        let results = session.handle_input(bytes);
        let results = results.map_err(|e| {
            self.malformed(format!("the ingest sent what RTMP does not allow: {e:?}"))
        })?;
        self.apply(results)
    }

    /// A failure for what the server sent that cannot be read: the handshake failed until the
    /// publish was accepted.
    fn malformed(&self, reason: String) -> LinkFailure {
        if self.phase == Phase::Live {
            LinkFailure {
                cause: IngestCause::Other,
                reason,
            }
        } else {
            handshake_failure(reason)
        }
    }

    fn apply(&mut self, results: Vec<ClientSessionResult>) -> Result<(), LinkFailure> {
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => {
                    self.outbox.extend_from_slice(&packet.bytes)
                }
                ClientSessionResult::RaisedEvent(event) => self.on_event(event)?,
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    fn on_event(&mut self, event: ClientSessionEvent) -> Result<(), LinkFailure> {
        match event {
            ClientSessionEvent::ConnectionRequestAccepted => {
                let session = self.session.as_mut().expect("connected");
                let publish = session
                    .request_publishing(self.point.stream.clone(), PublishRequestType::Live)
                    .map_err(protocol_failure)?;
                self.phase = Phase::Publish;
                self.apply(vec![publish])
            }
            ClientSessionEvent::ConnectionRequestRejected { description } => Err(LinkFailure {
                cause: IngestCause::Rejected,
                reason: format!("the ingest refused `connect`: {description}"),
            }),
            ClientSessionEvent::PublishRequestAccepted => {
                self.phase = Phase::Live;
                Ok(())
            }
            ClientSessionEvent::UnhandleableOnStatusCode { code } => status_failure(&code),
            // Some servers answer `publish` with `_error` (transaction 0) and a status object.
            ClientSessionEvent::UnknownTransactionResultReceived {
                additional_values, ..
            } => match status_code(&additional_values) {
                Some(code) => status_failure(&code),
                None => Ok(()),
            },
            // Other events (acknowledgements, metadata, unknown commands) need no answer. They
            // are not logged: a server may echo the stream name in them.
            _ => Ok(()),
        }
    }

    /// Queues the stream's description (`@setDataFrame onMetaData`).
    pub fn metadata(&mut self, metadata: &StreamMetadata) -> Result<(), LinkFailure> {
        let packet = self
            .live_session()?
            .publish_metadata(metadata)
            .map_err(protocol_failure)?;
        self.apply(vec![packet])
    }

    /// Queues a video tag body at `timestamp`.
    pub fn video(&mut self, tag: Bytes, timestamp: Duration) -> Result<(), LinkFailure> {
        let packet = self
            .live_session()?
            .publish_video_data(tag, rtmp_time(timestamp), false)
            .map_err(protocol_failure)?;
        self.apply(vec![packet])
    }

    /// Queues an audio tag body at `timestamp`.
    pub fn audio(&mut self, tag: Bytes, timestamp: Duration) -> Result<(), LinkFailure> {
        let packet = self
            .live_session()?
            .publish_audio_data(tag, rtmp_time(timestamp), false)
            .map_err(protocol_failure)?;
        self.apply(vec![packet])
    }

    /// Queues the end of the publish (`deleteStream`).
    pub fn finish(&mut self) -> Result<(), LinkFailure> {
        let results = self
            .live_session()?
            .stop_publishing()
            .map_err(protocol_failure)?;
        self.apply(results)
    }

    fn live_session(&mut self) -> Result<&mut ClientSession, LinkFailure> {
        match (self.phase, self.session.as_mut()) {
            (Phase::Live, Some(session)) => Ok(session),
            _ => Err(protocol_failure(
                "media before the ingest accepted the publish",
            )),
        }
    }

    /// What the server closing the connection now means.
    pub fn closed_by_server(&self) -> LinkFailure {
        match self.phase {
            Phase::Handshake => handshake_failure(
                "the ingest closed the connection during the RTMP handshake".into(),
            ),
            // nginx-rtmp answers an unknown application, or an `on_connect`/`on_publish` hook
            // that refuses the stream, by closing the connection without a status.
            Phase::Connect => LinkFailure {
                cause: IngestCause::Rejected,
                reason: "the ingest closed the connection in answer to `connect` \
                         (unknown application, or credentials refused)"
                    .into(),
            },
            Phase::Publish => LinkFailure {
                cause: IngestCause::Rejected,
                reason: "the ingest closed the connection in answer to `publish` \
                         (stream key refused)"
                    .into(),
            },
            Phase::Live => LinkFailure {
                cause: IngestCause::Broken,
                reason: "the ingest closed the connection".into(),
            },
        }
    }
}

/// An RTMP timestamp: milliseconds, wrapping at 2^32 as the protocol does.
fn rtmp_time(t: Duration) -> RtmpTimestamp {
    RtmpTimestamp::new(t.as_millis() as u32)
}

/// The `code` of the status object among a command's arguments.
fn status_code(values: &[Amf0Value]) -> Option<String> {
    values.iter().find_map(|value| match value {
        Amf0Value::Object(properties) => match properties.get("code") {
            Some(Amf0Value::Utf8String(code)) => Some(code.clone()),
            _ => None,
        },
        _ => None,
    })
}

/// A status the server sent instead of accepting the publish.
fn status_failure(code: &str) -> Result<(), LinkFailure> {
    let lower = code.to_ascii_lowercase();
    let cause = if lower.contains("badname") {
        // nginx-rtmp's "Already publishing": the slot frees once it notices the old connection
        // is dead. Adobe defines BadName the same way.
        IngestCause::AlreadyPublishing
    } else if lower.contains("denied") || lower.contains("rejected") || lower.contains("failed") {
        IngestCause::Rejected
    } else {
        log::debug!("RTMP status {code}");
        return Ok(());
    };
    Err(LinkFailure {
        cause,
        reason: format!("the ingest answered {code}"),
    })
}

fn handshake_failure(reason: String) -> LinkFailure {
    LinkFailure {
        cause: IngestCause::Handshake,
        reason,
    }
}

fn protocol_failure(error: impl std::fmt::Debug) -> LinkFailure {
    LinkFailure {
        cause: IngestCause::Other,
        reason: format!("RTMP: {error:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent};

    fn point(url: &str) -> PublishPoint {
        PublishPoint::of(&url::Url::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn splits_app_stream_and_tc_url() {
        let p = point("rtmp://ingest.example:1936/live/abc");
        assert_eq!(p.app, "live");
        assert_eq!(p.stream, "abc");
        assert_eq!(p.tc_url, "rtmp://ingest.example:1936/live");
        let p = point("rtmps://x.example/app/inst/key?token=1");
        assert_eq!(p.app, "app/inst");
        assert_eq!(p.stream, "key?token=1");
        assert_eq!(p.tc_url, "rtmps://x.example/app/inst");
        assert!(PublishPoint::of(&url::Url::parse("rtmp://h/only").unwrap()).is_none());
    }

    /// A server side of the conversation, by rml_rtmp's server session.
    struct Server {
        handshake: Handshake,
        session: Option<ServerSession>,
        out: Vec<u8>,
        accept_key: &'static str,
        published: Option<String>,
        video: usize,
    }

    impl Server {
        fn new(accept_key: &'static str) -> Self {
            Server {
                handshake: Handshake::new(PeerType::Server),
                session: None,
                out: Vec::new(),
                accept_key,
                published: None,
                video: 0,
            }
        }

        fn receive(&mut self, bytes: &[u8]) {
            let rest = if self.session.is_none() {
                match self.handshake.process_bytes(bytes).unwrap() {
                    HandshakeProcessResult::InProgress { response_bytes } => {
                        self.out.extend(response_bytes);
                        return;
                    }
                    HandshakeProcessResult::Completed {
                        response_bytes,
                        remaining_bytes,
                    } => {
                        self.out.extend(response_bytes);
                        let (session, results) =
                            ServerSession::new(ServerSessionConfig::new()).unwrap();
                        self.session = Some(session);
                        self.apply(results);
                        remaining_bytes
                    }
                }
            } else {
                bytes.to_vec()
            };
            let results = self.session.as_mut().unwrap().handle_input(&rest).unwrap();
            self.apply(results);
        }

        fn apply(&mut self, results: Vec<rml_rtmp::sessions::ServerSessionResult>) {
            use rml_rtmp::sessions::ServerSessionResult::*;
            for result in results {
                match result {
                    OutboundResponse(packet) => self.out.extend(packet.bytes),
                    RaisedEvent(event) => self.on_event(event),
                    UnhandleableMessageReceived(_) => {}
                }
            }
        }

        fn on_event(&mut self, event: ServerSessionEvent) {
            let session = self.session.as_mut().unwrap();
            let results = match event {
                ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                    session.accept_request(request_id).unwrap()
                }
                ServerSessionEvent::PublishStreamRequested {
                    request_id,
                    stream_key,
                    ..
                } => {
                    if stream_key == self.accept_key {
                        self.published = Some(stream_key);
                        session.accept_request(request_id).unwrap()
                    } else {
                        session
                            .reject_request(request_id, "NetStream.Publish.Denied", "bad key")
                            .unwrap()
                    }
                }
                ServerSessionEvent::VideoDataReceived { .. } => {
                    self.video += 1;
                    vec![]
                }
                _ => vec![],
            };
            self.apply(results);
        }
    }

    /// Runs the conversation between `publish` and `server` until neither has more to say.
    fn converse(publish: &mut Publish, server: &mut Server) -> Result<(), LinkFailure> {
        for _ in 0..20 {
            let mut to_server = Vec::new();
            publish.take_outbox(&mut to_server);
            if !to_server.is_empty() {
                server.receive(&to_server);
            }
            let to_client = std::mem::take(&mut server.out);
            if to_server.is_empty() && to_client.is_empty() {
                return Ok(());
            }
            publish.receive(&to_client)?;
        }
        Ok(())
    }

    #[test]
    fn publishes_to_a_server_that_accepts_the_key() {
        let mut publish = Publish::start(point("rtmp://h/live/good")).unwrap();
        let mut server = Server::new("good");
        converse(&mut publish, &mut server).unwrap();
        assert_eq!(publish.phase(), Phase::Live);
        assert_eq!(server.published.as_deref(), Some("good"));
        let tag = super::super::flv::avc_frame(true, 0, &[0, 0, 0, 1, 0x65]);
        publish.video(tag, Duration::from_millis(40)).unwrap();
        converse(&mut publish, &mut server).unwrap();
        assert_eq!(server.video, 1);
    }

    #[test]
    fn a_refused_key_is_a_rejection() {
        let mut publish = Publish::start(point("rtmp://h/live/bad")).unwrap();
        let mut server = Server::new("good");
        let failure = converse(&mut publish, &mut server).unwrap_err();
        assert_eq!(failure.cause, IngestCause::Rejected, "{failure:?}");
        assert!(!failure.reason.contains("bad"), "{}", failure.reason);
    }

    #[test]
    fn bytes_that_are_not_rtmp_fail_the_handshake() {
        let mut publish = Publish::start(point("rtmp://h/live/k")).unwrap();
        let failure = publish
            .receive(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .unwrap_err();
        assert_eq!(failure.cause, IngestCause::Handshake, "{failure:?}");
        assert_eq!(publish.closed_by_server().cause, IngestCause::Handshake);
    }

    #[test]
    fn media_before_the_publish_is_accepted_is_refused() {
        let mut publish = Publish::start(point("rtmp://h/live/k")).unwrap();
        assert!(
            publish
                .audio(Bytes::from_static(&[1]), Duration::ZERO)
                .is_err()
        );
    }
}
