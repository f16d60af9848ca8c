import Foundation

/// The native subscriptions of one `Streamer` or `Commerce`, each with what ends its stream. After
/// `releaseAll`, a subscription added late is released at once.
final class Subscriptions: @unchecked Sendable {
    private let lock = NSLock()
    private var open: [UUID: (subscription: Subscription, end: () -> Void)] = [:]
    private var closed = false

    /// Keeps `subscription` until `release`; returns its key.
    @discardableResult
    func add(_ subscription: Subscription, end: @escaping () -> Void = {}) -> UUID {
        let key = UUID()
        lock.lock()
        let late = closed
        if !late { open[key] = (subscription, end) }
        lock.unlock()
        if late {
            subscription.cancel()
            end()
        }
        return key
    }

    /// Cancels one subscription (no event after this returns) and ends its stream.
    func release(_ key: UUID) {
        lock.lock()
        let entry = open.removeValue(forKey: key)
        lock.unlock()
        entry?.subscription.cancel()
        entry?.end()
    }

    /// Cancels every subscription, now and from now on.
    func releaseAll() {
        lock.lock()
        closed = true
        let entries = Array(open.values)
        open.removeAll()
        lock.unlock()
        for entry in entries {
            entry.subscription.cancel()
            entry.end()
        }
    }
}
