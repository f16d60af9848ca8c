import Foundation

/// The farmer's shop on the phone: the catalog, sales written durably before `sell` returns, pins,
/// and (with a `SyncConfig`) the engine that sends every sale and pin to the platform exactly once,
/// through drop-outs, kills and restarts.
///
/// Database and network work runs on a dispatch queue, so every async method may be called from the
/// main actor. `queue` and `syncEvents` are updated from a FieldCast thread. After `close()` no
/// event arrives.
public final class Commerce: @unchecked Sendable {
    private let guarded: Guarded<Shop>
    private let subscriptions = Subscriptions()

    /// The outbox at a glance (pending, in flight, conflicted, synced, why paused), refreshed after
    /// every sale and every sync event: the badge of sales waiting to sync.
    public let queue: LiveValue<QueueState> = LiveValue(QueueState(pending: 0, inFlight: 0, conflicted: 0, synced: 0, discarded: 0, pausedReason: nil, items: []))

    init(databasePath: String, sync: SyncConfig?) throws {
        let store = try Store.open(path: databasePath)
        let engine = try sync.map { try SyncEngine.start(store: store, config: $0) }
        guarded = Guarded(Shop(store: store, engine: engine), what: "commerce")
        if let engine {
            do {
                subscriptions.add(try engine.subscribe(listener: SyncEventRelay { [weak self] _ in self?.refreshQueue() }))
            } catch {
                engine.stop()
                throw error
            }
        }
        refreshQueue()
    }

    /// What the sync engine does, from the moment of this call: synced records, conflicts the
    /// farmer must see (`.conflict` with the platform's code and message), retries, pauses. Each
    /// call makes its own subscription, cancelled when the iteration ends or by `close()`. Empty
    /// without a `SyncConfig` or once closed.
    public var syncEvents: AsyncStream<SyncEvent> {
        AsyncStream { continuation in
            guard let engine = try? guarded.use({ $0.engine }),
                  let own = try? engine.subscribe(listener: SyncEventRelay { continuation.yield($0) }) else {
                continuation.finish()
                return
            }
            let key = subscriptions.add(own) { continuation.finish() }
            continuation.onTermination = { [subscriptions] _ in subscriptions.release(key) }
        }
    }

    /// Every product of the local catalog.
    public func products() async throws -> [Product] {
        try await io { try $0.store.products() }
    }

    /// Adds a product or replaces every field of an existing one.
    public func upsertProduct(_ product: Product) async throws {
        try await io { try $0.store.upsertProduct(product: product) }
    }

    /// Records a sale, its stock change and its outbox record in one transaction that is on the
    /// storage when this returns; the sync engine then sends it with the sale id as idempotency key.
    /// Throws `FieldCastError.Commerce` (unknown product, insufficient stock...) or
    /// `FieldCastError.Storage` (disk full), and then nothing was written.
    @discardableResult
    public func sell(
        _ productId: String,
        quantity: Int64 = 1,
        unitPriceMinor: Int64? = nil,
        allowOversell: Bool = false,
        buyer: String? = nil,
        sessionId: String? = nil
    ) async throws -> Sale {
        let sale = NewSale(
            productId: productId, quantity: quantity, unitPriceMinor: unitPriceMinor,
            allowOversell: allowOversell, buyer: buyer, sessionId: sessionId
        )
        let recorded = try await io { try $0.store.recordSale(sale: sale) }
        refreshQueue()
        return recorded
    }

    /// Every sale, oldest first.
    public func sales() async throws -> [Sale] {
        try await io { try $0.store.sales() }
    }

    /// The pins of a platform live session (the replay's chapters).
    public func pins(sessionId: String) async throws -> [Pin] {
        try await io { try $0.store.pins(sessionId: sessionId) }
    }

    /// How many outbox records are in each state.
    public func outboxCounts() async throws -> OutboxCounts {
        try await io { try $0.store.outboxCounts() }
    }

    /// Whether the device has a network (from `NetworkMonitor`).
    public func setNetworkAvailable(_ available: Bool) {
        _ = try? guarded.use { $0.engine?.setNetworkAvailable(available: available) }
    }

    /// Sends what waits now instead of after its backoff.
    public func syncNow() throws {
        try guarded.use { $0.engine?.syncNow() }
    }

    /// Replaces the platform token (after a refresh) and resumes a relay paused for it.
    public func setToken(_ token: String) throws {
        try guarded.use { $0.engine?.setToken(token: token) }
    }

    /// Drops a conflicted record after the farmer saw it.
    public func discardConflicted(_ recordId: String) async throws {
        try await io { try Self.syncEngine($0).discardConflicted(recordId: recordId) }
        refreshQueue()
    }

    /// Replaces the local catalog with the platform's; returns how many products it holds.
    @discardableResult
    public func refreshCatalog() async throws -> UInt64 {
        try await io { try Self.syncEngine($0).refreshCatalog() }
    }

    /// Uploads a replay file of a live session, resuming an earlier upload of it.
    public func uploadReplay(path: String, sessionId: String) async throws -> UploadResult {
        try await io { try Self.syncEngine($0).uploadReplay(path: path, sessionId: sessionId) }
    }

    /// Returns once nothing is pending or in flight (true), or after `timeoutMs` (false).
    public func awaitIdle(timeoutMs: UInt64) async throws -> Bool {
        try await io { try Self.syncEngine($0).waitIdle(timeoutMs: timeoutMs) }
    }

    /// Stops the sync engine and releases the store. Idempotent; no event arrives after it returns,
    /// and iterations of `queue` and `syncEvents` finish.
    public func close() {
        guard let parts = guarded.close() else { return }
        subscriptions.releaseAll()
        queue.finish()
        parts.engine?.stop()
    }

    /// The store, for `Streamer.linkCommerce`.
    func store() throws -> Store {
        try guarded.use { $0.store }
    }

    private func io<T: Sendable>(_ body: @escaping @Sendable (Shop) throws -> T) async throws -> T {
        try await blocking { [guarded] in try guarded.use(body) }
    }

    private func refreshQueue() {
        let state = try? guarded.use { parts -> QueueState in
            if let engine = parts.engine { return try engine.queueState() }
            let c = try parts.store.outboxCounts()
            return QueueState(
                pending: c.pending, inFlight: c.inFlight, conflicted: c.conflicted,
                synced: c.synced, discarded: c.discarded, pausedReason: nil, items: []
            )
        }
        if let state { queue.send(state) }
    }

    private static func syncEngine(_ parts: Shop) throws -> SyncEngine {
        guard let engine = parts.engine else {
            throw FieldCastError.Sync(failure: .invalidConfig, detail: "this Commerce was opened without a SyncConfig")
        }
        return engine
    }
}

/// The native parts of a `Commerce`: the store and, with a `SyncConfig`, its sync engine.
struct Shop: Sendable {
    let store: Store
    let engine: SyncEngine?
}
