import FieldCast
import XCTest

/// Going live from Swift: a real nginx-rtmp (the sandbox's ingest) receives the stream, directly and
/// over `rtmps://` behind a private CA.
final class LiveStreamTests: XCTestCase {
    func testGoesLiveAndTheEventStreamSeesEveryStateInOrder() async throws {
        let sandbox = try Sandbox.start()
        defer { sandbox.close() }
        let live = try await sandbox.createLiveSession()
        let streamer = try FieldCast.streamer(SessionConfig(
            ingestUrl: live.publishUrl, source: .testPattern, profile: .p360, adaptiveBitrate: false
        ))
        defer { streamer.close() }
        let events = streamer.events
        let states = Task { () -> [SessionState] in
            var seen: [SessionState] = []
            for await event in events {
                if case let .stateChanged(_, to) = event { seen.append(to) }
                if seen.last == .ended { break }
            }
            return seen
        }
        try await within(seconds: 15) { try await streamer.start() }
        XCTAssertEqual(streamer.state.value, .live)
        try await Task.sleep(nanoseconds: 3_000_000_000)
        XCTAssertNotNil(streamer.stats.value, "stats arrive every second while live")
        let ended = try await within(seconds: 15) { try await streamer.stop() }
        XCTAssertEqual(ended, .ended)
        let seen = await states.value
        XCTAssertEqual(seen, [.connecting, .live, .ending, .ended])

        let streams = try MediaProbe.streams(sandbox.recording(live.streamKey))
        XCTAssertEqual(streams["video"]?.codec, "h264")
        XCTAssertEqual(streams["video"]?.width, 640)
        XCTAssertEqual(streams["video"]?.height, 360)
        XCTAssertEqual(streams["audio"]?.codec, "aac")
        let frames = streams["video"]?.frames ?? 0
        XCTAssertTrue((60...150).contains(frames), "about 3 s at 30 fps expected, the ingest got \(frames) frames")
    }

    func testGoesLiveOverRtmpsTrustingAPrivateCa() async throws {
        let sandbox = try Sandbox.start()
        defer { sandbox.close() }
        let live = try await sandbox.createLiveSession()
        let ingest = try XCTUnwrap(URL(string: live.publishUrl))
        let ingestPort = try XCTUnwrap(ingest.port.flatMap { UInt16(exactly: $0) })
        let ca = try TestCa()
        defer { ca.close() }
        let front = try await TlsFront.start(ca: ca, backendPort: ingestPort)
        defer { front.close() }
        let streamer = try FieldCast.streamer(SessionConfig(
            ingestUrl: "rtmps://localhost:\(front.port)\(ingest.path)", source: .testPattern, profile: .p270,
            adaptiveBitrate: false, ingestCaPem: ca.caPem
        ))
        defer { streamer.close() }
        try await within(seconds: 15) { try await streamer.start() }
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let ended = try await within(seconds: 15) { try await streamer.stop() }
        XCTAssertEqual(ended, .ended)
        XCTAssertTrue(front.handshakes >= 1, "no TLS session reached the front")

        let streams = try MediaProbe.streams(sandbox.recording(live.streamKey))
        XCTAssertEqual(streams["video"]?.codec, "h264")
        XCTAssertEqual(streams["video"]?.width, 480)
        XCTAssertEqual(streams["video"]?.height, 270)
    }
}

/// Runs `body`, failing with a timeout after `seconds`.
func within<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            throw TimeoutError(seconds: seconds)
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw TimeoutError(seconds: seconds) }
        return first
    }
}

/// A step took longer than its limit.
struct TimeoutError: Error {
    let seconds: Double
}
