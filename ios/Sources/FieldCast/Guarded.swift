import Foundation

/// A native object behind a lock: handed out by `use` until `close`, after which every call throws
/// `FieldCastError.Closed`. A call that got the object keeps it alive until it returns, so a close
/// on another thread never releases an object in use.
final class Guarded<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value?
    private let what: String

    init(_ value: Value, what: String) {
        self.value = value
        self.what = what
    }

    /// True once closed.
    var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value == nil
    }

    /// Runs `body` with the object, or throws `FieldCastError.Closed`.
    func use<T>(_ body: (Value) throws -> T) throws -> T {
        lock.lock()
        let current = value
        lock.unlock()
        guard let current else { throw FieldCastError.Closed(detail: "this \(what) was closed; create a new one") }
        return try body(current)
    }

    /// Takes the object out: non-nil for the first call only, so that closing is idempotent.
    func close() -> Value? {
        lock.lock()
        defer { lock.unlock() }
        let taken = value
        value = nil
        return taken
    }
}
