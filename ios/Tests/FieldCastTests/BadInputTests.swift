import FieldCast
import Network
import XCTest

/// Bad input from Swift gets a typed `FieldCastError`, and the process and the session go on.
final class BadInputTests: XCTestCase {
    private func config(_ url: String = "rtmp://127.0.0.1:1/live/bad") -> SessionConfig {
        SessionConfig(ingestUrl: url, source: .app(video: VideoFormat(format: .nv12, width: 320, height: 180), audio: nil), profile: .p270)
    }

    private func nv12(width: Int = 320, height: Int = 180, lumaBytes: Int? = nil) -> [VideoPlane] {
        [
            VideoPlane(bytes: Data(count: lumaBytes ?? width * height), bytesPerRow: width, pixelStride: 1),
            VideoPlane(bytes: Data(count: width * height / 2), bytesPerRow: width, pixelStride: 2),
        ]
    }

    /// The `FieldCastError` that `body` throws, failing the test when it throws none or another type.
    private func thrown(_ body: () async throws -> Void) async -> FieldCastError? {
        do {
            try await body()
            XCTFail("no error thrown")
        } catch let error as FieldCastError {
            return error
        } catch {
            XCTFail("not a FieldCastError: \(error)")
        }
        return nil
    }

    func testBadUrlsAndConfigurationsAreTyped() async {
        for url in ["", "not a url", "http://example.com/live/key", "rtmp://", "rtmp://host:99999/live/k"] {
            switch await thrown({ _ = try FieldCast.streamer(self.config(url)) }) {
            case .InvalidUrl?, .InvalidConfig?: break
            case let other: XCTFail("\(url): \(String(describing: other))")
            }
        }
        var noFps = config()
        noFps.fps = 0
        guard case .InvalidConfig? = await thrown({ _ = try FieldCast.streamer(noFps) }) else { return XCTFail("fps 0") }
        var tooSlow = config()
        tooSlow.videoKbps = 1
        guard case .InvalidConfig? = await thrown({ _ = try FieldCast.streamer(tooSlow) }) else { return XCTFail("1 kbit/s") }
    }

    /// A test-pattern session to `url`, trusting `caPem` besides the system's roots.
    private func ingestConfig(_ url: String, caPem: String? = nil) -> SessionConfig {
        SessionConfig(ingestUrl: url, source: .testPattern, profile: .p270, adaptiveBitrate: false, ingestCaPem: caPem)
    }

    /// When and why a session to `url` fails before it is live; nil (and a test failure) for any other outcome.
    private func ingestFailure(_ url: String, caPem: String? = nil) async throws -> (failure: IngestFailure, cause: IngestCause, detail: String)? {
        let streamer = try FieldCast.streamer(ingestConfig(url, caPem: caPem))
        defer { streamer.close() }
        guard case let .Ingest(failure, cause, detail)? = await thrown({ try await within(seconds: 15) { try await streamer.start() } }) else {
            XCTFail("\(url): no ingest failure")
            return nil
        }
        return (failure, cause, detail)
    }

    func testIngestFailuresNameTheirCause() async throws {
        // Nothing listens on port 1: refused, thrown by start() and sent as an event.
        let streamer = try FieldCast.streamer(ingestConfig("rtmp://127.0.0.1:1/live/key"))
        defer { streamer.close() }
        let events = streamer.events
        let firstFailure = Task { () -> FieldCastError? in
            for await event in events {
                if case let .failure(error) = event { return error }
            }
            return nil
        }
        guard case let .Ingest(failure, cause, _)? = await thrown({ try await within(seconds: 15) { try await streamer.start() } }) else {
            return XCTFail("nothing listening")
        }
        XCTAssertEqual(failure, .unreachable)
        XCTAssertEqual(cause, .refused)
        XCTAssertFalse(cause.isTls)
        guard case let .Ingest(_, eventCause, _)? = try await within(seconds: 5, { await firstFailure.value }) else {
            return XCTFail("no failure event")
        }
        XCTAssertEqual(eventCause, .refused)

        // TLS: a CA that is not PEM is refused at once; the certificate is for `localhost`, signed by a private CA.
        guard case .InvalidConfig? = await thrown({ _ = try FieldCast.streamer(self.ingestConfig("rtmps://localhost:1/live/key", caPem: "not a certificate")) }) else {
            return XCTFail("a CA that is not PEM")
        }
        let ca = try TestCa()
        defer { ca.close() }
        let front = try await TlsFront.start(ca: ca, backendPort: 1)
        defer { front.close() }
        let systemOnly = try await ingestFailure("rtmps://localhost:\(front.port)/live/key")
        XCTAssertEqual(systemOnly?.failure, .unreachable)
        XCTAssertEqual(systemOnly?.cause, .tlsUnknownIssuer, systemOnly?.detail ?? "")
        XCTAssertTrue(systemOnly?.cause.isTls ?? false)
        let other = try TestCa()
        defer { other.close() }
        let unrelated = try await ingestFailure("rtmps://localhost:\(front.port)/live/key", caPem: other.caPem)
        XCTAssertEqual(unrelated?.cause, .tlsUnknownIssuer, unrelated?.detail ?? "")
        // The CA is trusted now, and the certificate does not name the address.
        let address = try await ingestFailure("rtmps://127.0.0.1:\(front.port)/live/key", caPem: ca.caPem)
        XCTAssertEqual(address?.cause, .tlsNameMismatch, address?.detail ?? "")
        XCTAssertEqual(front.handshakes, 0, "a publisher that refuses the certificate sets up no TLS session")
    }

    func testMalformedFramesAreRejectedAndTheSessionGoesOn() async throws {
        // An ingest that accepts the connection and never answers keeps the session connecting.
        let silent = try NWListener(using: .tcp, on: .any)
        silent.newConnectionHandler = { $0.start(queue: .global()) }
        silent.start(queue: .global())
        defer { silent.cancel() }
        while silent.port == nil { try await Task.sleep(nanoseconds: 10_000_000) }
        let port = try XCTUnwrap(silent.port?.rawValue)
        let streamer = try FieldCast.streamer(config("rtmp://127.0.0.1:\(port)/live/key"))
        defer { streamer.close() }

        guard case let .InvalidState(state, _)? = await thrown({ _ = try streamer.pushVideoFrame(format: .nv12, width: 320, height: 180, planes: self.nv12()) }) else {
            return XCTFail("a push before start")
        }
        XCTAssertEqual(state, .idle)
        try await streamer.start(awaitLive: false)
        guard case let .InvalidFrame(detail)? = await thrown({
            _ = try streamer.pushVideoFrame(format: .nv12, width: 320, height: 180, planes: self.nv12(lumaBytes: 1000))
        }) else { return XCTFail("a short luma plane") }
        XCTAssertTrue(detail.contains("plane 0"), detail)
        let malformed: [(Int, Int, [VideoPlane])] = [
            (640, 360, nv12(width: 640, height: 360)),
            (321, 180, nv12()),
            (320, 180, Array(nv12().prefix(1))),
            (-2, 180, nv12()),
            (320, 180, nv12() + nv12()),
        ]
        for (width, height, planes) in malformed {
            guard case .InvalidFrame? = await thrown({
                _ = try streamer.pushVideoFrame(format: .nv12, width: width, height: height, planes: planes)
            }) else { return XCTFail("\(width)x\(height), \(planes.count) planes") }
        }
        guard case .InvalidFrame? = await thrown({ _ = try streamer.pushAudio(pcm: Data(count: 64)) }) else {
            return XCTFail("audio on a session without audio")
        }
        XCTAssertEqual(try streamer.pushVideoFrame(format: .nv12, width: 320, height: 180, planes: nv12()), .queued)
        XCTAssertEqual(streamer.state.value, .connecting)
        try await streamer.stop()
    }

    func testCallsOnAClosedStreamerAreTyped() async throws {
        let streamer = try FieldCast.streamer(config())
        streamer.close()
        streamer.close()
        let calls: [() async throws -> Void] = [
            { _ = try streamer.pushVideoFrame(format: .nv12, width: 320, height: 180, planes: self.nv12()) },
            { try await streamer.start() },
            { try await streamer.stop() },
            { _ = try await streamer.pin("orange-box") },
            { _ = try streamer.subscribe { _ in } },
        ]
        for call in calls {
            guard case .Closed? = await thrown(call) else { return XCTFail("a call on a closed streamer") }
        }
        streamer.setNetworkAvailable(true)
    }

    func testCommerceRefusalsAreTyped() async throws {
        let db = FileManager.default.temporaryDirectory.appendingPathComponent("fieldcast-swift-bad-\(UUID().uuidString).db").path
        let commerce = try FieldCast.commerce(databasePath: db)
        guard case let .Commerce(failure, _)? = await thrown({ try await commerce.sell("no-such-product") }) else {
            return XCTFail("an unknown product")
        }
        XCTAssertEqual(failure, .unknownProduct)
        guard case .Sync? = await thrown({ try await commerce.refreshCatalog() }) else { return XCTFail("no SyncConfig") }
        commerce.close()
        commerce.close()
        guard case .Closed? = await thrown({ _ = try await commerce.products() }) else { return XCTFail("a closed commerce") }
        guard case .Storage? = await thrown({ _ = try FieldCast.commerce(databasePath: "/dev/null/no/such/dir/shop.db") }) else {
            return XCTFail("an impossible path")
        }
    }
}
