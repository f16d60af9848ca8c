/// Hands the core's session events to a closure (on the core's event thread).
final class SessionEventRelay: SessionListener {
    private let deliver: @Sendable (SessionEvent) -> Void

    init(_ deliver: @escaping @Sendable (SessionEvent) -> Void) {
        self.deliver = deliver
    }

    func onEvent(event: SessionEvent) {
        deliver(event)
    }
}

/// Hands the sync engine's events to a closure (on the core's sync-event thread).
final class SyncEventRelay: SyncListener {
    private let deliver: @Sendable (SyncEvent) -> Void

    init(_ deliver: @escaping @Sendable (SyncEvent) -> Void) {
        self.deliver = deliver
    }

    func onEvent(event: SyncEvent) {
        deliver(event)
    }
}
