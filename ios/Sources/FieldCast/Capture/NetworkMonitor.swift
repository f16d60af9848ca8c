import Foundation
import Network

/// Tells its listeners whether the device has a network, from an `NWPathMonitor`:
/// `addListener(streamer.setNetworkAvailable)`, `addListener(commerce.setNetworkAvailable)`. A
/// network that returns cuts the uplink's reconnect wait and the sync backoff short; without one
/// the outbox pauses (`QueueState.pausedReason` is `.offline`).
public final class NetworkMonitor: @unchecked Sendable {
    private let monitor = NWPathMonitor()
    private let lock = NSLock()
    private var listeners: [UUID: @Sendable (Bool) -> Void] = [:]
    private var available: Bool?

    /// Starts watching the device's network paths.
    public init() {
        monitor.pathUpdateHandler = { [weak self] path in self?.update(path.status == .satisfied) }
        monitor.start(queue: DispatchQueue(label: "fieldcast-network"))
    }

    /// Calls `listener` with the current availability (once known) and every change, on the
    /// monitor's queue, until the token is cancelled or the monitor closed.
    @discardableResult
    public func addListener(_ listener: @escaping @Sendable (Bool) -> Void) -> ListenerToken {
        let key = UUID()
        lock.lock()
        listeners[key] = listener
        let now = available
        lock.unlock()
        if let now { listener(now) }
        return ListenerToken { [weak self] in self?.removeListener(key) }
    }

    /// Stops watching and drops every listener.
    public func close() {
        monitor.cancel()
        lock.lock()
        listeners.removeAll()
        lock.unlock()
    }

    private func update(_ isAvailable: Bool) {
        lock.lock()
        let changed = available != isAvailable
        available = isAvailable
        let targets = Array(listeners.values)
        lock.unlock()
        if changed { targets.forEach { $0(isAvailable) } }
    }

    private func removeListener(_ key: UUID) {
        lock.lock()
        listeners.removeValue(forKey: key)
        lock.unlock()
    }
}
