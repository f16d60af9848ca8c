import Dispatch

/// Runs `body`, a call that waits on the database or the network, on a dispatch queue so that it
/// never holds a thread of Swift's cooperative pool, and resumes with its result.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(with: Result { try body() })
        }
    }
}
