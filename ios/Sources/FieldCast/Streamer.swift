import Foundation

/// One live stream. `state` and `stats` are live values and `events` an `AsyncStream`; `start()` and
/// `stop()` return once the stream is live or has ended. Media pushes never block: they return
/// `.dropped` when the encoder is behind.
///
/// Threading: every method may be called from any thread or task. Events come from a FieldCast
/// thread and nothing calls into the app while holding a FieldCast lock. After `close()` returns no
/// event is delivered.
public final class Streamer: @unchecked Sendable {
    private let guarded: Guarded<LiveSession>
    private let subscriptions = Subscriptions()

    /// The session's state: `.idle`, `.connecting`, `.live`, `.reconnecting`, `.ending`, `.ended` or `.failed`.
    public let state: LiveValue<SessionState> = LiveValue(.idle)

    /// The latest one-second statistics (nil before the first second).
    public let stats: LiveValue<LiveStats?> = LiveValue(nil)

    init(config: SessionConfig) throws {
        let session = try LiveSession(config: config)
        guarded = Guarded(session, what: "streamer")
        let state = self.state
        let stats = self.stats
        let watch = try session.subscribe(listener: SessionEventRelay { event in
            switch event {
            case let .stateChanged(_, to):
                state.send(to)
            case let .stats(latest):
                stats.send(latest)
            case .failure, .adapted:
                break
            }
        })
        subscriptions.add(watch)
    }

    /// Every event from the moment of this call: state changes, stats, failures, adaptations. Each
    /// call makes its own subscription, cancelled when the iteration ends (`onTermination`) or by
    /// `close()`, which also finishes the stream. The stream of a closed streamer is empty.
    public var events: AsyncStream<SessionEvent> {
        AsyncStream { continuation in
            do {
                let own = try guarded.use { try $0.subscribe(listener: SessionEventRelay { continuation.yield($0) }) }
                let key = subscriptions.add(own) { continuation.finish() }
                continuation.onTermination = { [subscriptions] _ in subscriptions.release(key) }
            } catch {
                continuation.finish()
            }
        }
    }

    /// Calls `listener` with every event from now on, on a FieldCast thread, until the token is
    /// cancelled or this streamer is closed; after either returns, `listener` is not called again.
    /// `events` is the same as an `AsyncStream`.
    public func subscribe(_ listener: @escaping @Sendable (SessionEvent) -> Void) throws -> ListenerToken {
        let own = try guarded.use { try $0.subscribe(listener: SessionEventRelay(listener)) }
        let key = subscriptions.add(own)
        return ListenerToken { [subscriptions] in subscriptions.release(key) }
    }

    /// Starts capturing, encoding and connecting and, with `awaitLive` (the default), returns once
    /// the stream is live. Throws the failure (`FieldCastError.Ingest` for an unreachable ingest or a
    /// rejected key, its `cause` saying what failed) if the session fails first, and
    /// `CancellationError` when the task is cancelled (the session goes on connecting until `stop()`).
    public func start(awaitLive: Bool = true) async throws {
        try guarded.use { try $0.start() }
        guard awaitLive else { return }
        guard let reached = await state.first(where: { $0 == .live || $0.isTerminal }) else {
            try Task.checkCancellation()
            throw FieldCastError.InvalidState(state: state.value, detail: "the streamer was closed while starting")
        }
        if reached == .failed {
            _ = try guarded.use { try $0.wait(timeoutMs: 0) }
            throw FieldCastError.InvalidState(state: reached, detail: "the session failed")
        }
        if reached != .live {
            throw FieldCastError.InvalidState(state: reached, detail: "the session ended before it was live")
        }
    }

    /// Ends the stream cleanly (end-of-stream reaches the ingest and the recording) and returns once
    /// it has: `.ended`, or `.failed` for a session that had failed (see `events`).
    @discardableResult
    public func stop() async throws -> SessionState {
        try guarded.use { $0.stop() }
        guard let reached = await state.first(where: { $0.isTerminal }) else {
            try Task.checkCancellation()
            return state.value
        }
        return reached
    }

    /// Pushes one camera frame of `format` at `width` x `height`; its `planes` (in the format's
    /// order) are read during the call and copied once. Throws `FieldCastError.InvalidFrame` when
    /// the planes do not fit the declared size and strides.
    public func pushVideoFrame(
        format: PixelFormat,
        width: Int,
        height: Int,
        planes: [VideoPlane],
        timestampUs: UInt64? = nil
    ) throws -> PushOutcome {
        func invalid() -> FieldCastError {
            .InvalidFrame(detail: "a frame has 1 to 3 planes and no negative size or stride (got \(planes.count) planes, \(width)x\(height))")
        }
        guard planes.count <= 3, let w = UInt32(exactly: width), let h = UInt32(exactly: height) else { throw invalid() }
        let layouts = try planes.map { plane -> PlaneLayout in
            guard let row = UInt32(exactly: plane.bytesPerRow), let pixel = UInt32(exactly: plane.pixelStride) else { throw invalid() }
            return PlaneLayout(rowStride: row, pixelStride: pixel)
        }
        let info = FrameInfo(format: format, width: w, height: h, planes: layouts, timestampUs: timestampUs)
        let bytes = (0..<3).map { $0 < planes.count ? planes[$0].bytes : Data() }
        return try guarded.use { try $0.pushVideoFrame(info: info, plane0: bytes[0], plane1: bytes[1], plane2: bytes[2]) }
    }

    /// Pushes interleaved 16-bit little-endian PCM captured at `timestampUs` (the video's clock).
    public func pushAudio(pcm: Data, timestampUs: UInt64? = nil) throws -> PushOutcome {
        try guarded.use { try $0.pushAudio(pcm: pcm, timestampUs: timestampUs) }
    }

    /// Tells the session whether the device has a network; its return cuts a reconnect wait short.
    public func setNetworkAvailable(_ available: Bool) {
        _ = try? guarded.use { $0.setNetworkAvailable(available: available) }
    }

    /// Lets this streamer pin products of `commerce` under the platform's live session id.
    public func linkCommerce(_ commerce: Commerce, platformSessionId: String) throws {
        let store = try commerce.store()
        try guarded.use { $0.linkCommerce(store: store, platformSessionId: platformSessionId) }
    }

    /// Pins a product now: stored, queued for the platform, and carried in the video.
    public func pin(_ productId: String) async throws -> Pin {
        try await blocking { [guarded] in try guarded.use { try $0.pinProduct(productId: productId) } }
    }

    /// Ends a pin now; the pin becomes a chapter of the replay.
    public func unpin(_ pinId: String) async throws -> Pin {
        try await blocking { [guarded] in try guarded.use { try $0.unpinProduct(pinId: pinId) } }
    }

    /// The H.264 encoder in use.
    public var encoder: String {
        get throws { try guarded.use { $0.encoder() } }
    }

    /// Releases the session. A running stream is ended first (this waits for its drain, at most
    /// about 10 s: call `stop()` before to keep the caller's thread free). Idempotent; no event is
    /// delivered after it returns, and iterations of `state`, `stats` and `events` finish.
    public func close() {
        guard let session = guarded.close() else { return }
        subscriptions.releaseAll()
        state.finish()
        stats.finish()
        // Released last: dropping the core's session ends a running stream and waits for its drain.
        withExtendedLifetime(session) {}
    }
}

/// Stops a listener given to `Streamer.subscribe(_:)`.
public final class ListenerToken: Sendable {
    private let release: @Sendable () -> Void

    init(_ release: @escaping @Sendable () -> Void) {
        self.release = release
    }

    /// Stops the listener; once this returns it is not called again. Idempotent.
    public func cancel() {
        release()
    }
}

extension SessionState {
    /// True for `.ended` and `.failed`, after which nothing changes.
    public var isTerminal: Bool {
        self == .ended || self == .failed
    }

    /// True while the session takes media: connecting, live or reconnecting.
    var takesMedia: Bool {
        self == .connecting || self == .live || self == .reconnecting
    }
}

extension IngestCause {
    /// True for the causes of a failed TLS session with an `rtmps://` ingest (the `tls` ones).
    public var isTls: Bool {
        switch self {
        case .tlsNameMismatch, .tlsUnknownIssuer, .tlsExpired, .tlsOther:
            return true
        default:
            return false
        }
    }
}
