import Foundation

/// A value that changes over time, as Kotlin's `StateFlow`: read `value` now, or iterate with
/// `for await` to get the current value and then every change (a slow reader skips to the newest).
/// Iterations end when the owner closes.
public final class LiveValue<Value: Sendable>: AsyncSequence, @unchecked Sendable {
    /// What each iteration yields.
    public typealias Element = Value

    private let lock = NSLock()
    private var current: Value
    private var readers: [UUID: AsyncStream<Value>.Continuation] = [:]
    private var finished = false

    init(_ initial: Value) {
        current = initial
    }

    /// The value now.
    public var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// The current value, then every change until the owner closes or the iteration ends.
    public func makeAsyncIterator() -> AsyncStream<Value>.Iterator {
        let (stream, continuation) = AsyncStream.makeStream(of: Value.self, bufferingPolicy: .bufferingNewest(1))
        let key = UUID()
        lock.lock()
        continuation.yield(current)
        if finished {
            continuation.finish()
        } else {
            readers[key] = continuation
        }
        lock.unlock()
        continuation.onTermination = { [weak self] _ in self?.removeReader(key) }
        return stream.makeAsyncIterator()
    }

    /// Sets the value and tells every reader.
    func send(_ value: Value) {
        lock.lock()
        defer { lock.unlock() }
        current = value
        for reader in readers.values {
            reader.yield(value)
        }
    }

    /// Ends every iteration, now and from now on; `value` keeps the last value.
    func finish() {
        lock.lock()
        finished = true
        let ending = Array(readers.values)
        readers.removeAll()
        lock.unlock()
        for reader in ending {
            reader.finish()
        }
    }

    private func removeReader(_ key: UUID) {
        lock.lock()
        defer { lock.unlock() }
        readers.removeValue(forKey: key)
    }
}
