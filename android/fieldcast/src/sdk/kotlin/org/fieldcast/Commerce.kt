package org.fieldcast

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.consumeEach
import kotlinx.coroutines.launch
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import org.fieldcast.ffi.FieldCastException
import org.fieldcast.ffi.NewSale
import org.fieldcast.ffi.OutboxCounts
import org.fieldcast.ffi.Pin
import org.fieldcast.ffi.Product
import org.fieldcast.ffi.QueueState
import org.fieldcast.ffi.Sale
import org.fieldcast.ffi.Store
import org.fieldcast.ffi.Subscription
import org.fieldcast.ffi.SyncConfig
import org.fieldcast.ffi.SyncEngine
import org.fieldcast.ffi.SyncEvent
import org.fieldcast.ffi.SyncFailure
import org.fieldcast.ffi.SyncListener
import org.fieldcast.ffi.UploadResult

/**
 * The farmer's shop on the phone: the catalog, sales written durably before [sell] returns, pins,
 * and (with a [SyncConfig]) the engine that sends every sale and pin to the platform exactly once,
 * through drop-outs, kills and restarts.
 *
 * Database work runs on [Dispatchers.IO]; the suspend functions may be called from the main thread.
 * [queue] and [syncEvents] are updated from a FieldCast thread. After [close] no event arrives.
 */
class Commerce internal constructor(databasePath: String, sync: SyncConfig?) : AutoCloseable {
    internal val store: Store = Store.open(databasePath)
    private val engine: SyncEngine? = try {
        sync?.let { SyncEngine.start(store, it) }
    } catch (e: FieldCastException) {
        store.destroy()
        throw e
    }
    private val guard = Closing("commerce")
    private val _queue = MutableStateFlow(emptyQueue())
    private val subscriptions = Subscriptions(guard)

    /**
     * Sync events ask for a [queue] refresh here. The channel is conflated, so a burst of events
     * (thousands of sales syncing after an outage) costs one read of the outbox per refresh that is
     * already running, not one per event.
     */
    private val queueRefreshes = Channel<Unit>(Channel.CONFLATED)
    private val refresher = CoroutineScope(SupervisorJob() + Dispatchers.IO).apply {
        launch { queueRefreshes.consumeEach { refreshQueue() } }
    }
    private val queueWatch: Subscription? = engine?.subscribe(object : SyncListener {
        override fun onEvent(event: SyncEvent) {
            queueRefreshes.trySend(Unit)
        }
    })

    init {
        refreshQueue()
    }

    /**
     * The outbox at a glance (pending, in flight, conflicted, synced, why paused), refreshed after
     * every sale and every sync event: the badge of sales waiting to sync.
     */
    val queue: StateFlow<QueueState> = _queue.asStateFlow()

    /**
     * What the sync engine does, from the moment of collection: synced records, conflicts the farmer
     * must see (`SyncEvent.Conflict` with the platform's code and message), retries, pauses. Empty
     * without a [SyncConfig].
     */
    val syncEvents: Flow<SyncEvent> = subscriptions.flow { deliver ->
        guard.use {
            engine?.subscribe(object : SyncListener {
                override fun onEvent(event: SyncEvent) = deliver(event)
            })
        }
    }

    /** Every product of the local catalog. */
    @Throws(FieldCastException::class)
    suspend fun products(): List<Product> = io { store.products() }

    /** Adds a product or replaces every field of an existing one. */
    @Throws(FieldCastException::class)
    suspend fun upsertProduct(product: Product) = io { store.upsertProduct(product) }

    /**
     * Records a sale, its stock change and its outbox record in one transaction that is on the
     * storage when this returns; the sync engine then sends it with the sale id as idempotency key.
     * Throws [FieldCastException.Commerce] (unknown product, insufficient stock...) or
     * [FieldCastException.Storage] (disk full), and then nothing was written.
     */
    @Throws(FieldCastException::class)
    suspend fun sell(
        productId: String,
        quantity: Long = 1,
        unitPriceMinor: Long? = null,
        allowOversell: Boolean = false,
        buyer: String? = null,
        sessionId: String? = null,
    ): Sale = io {
        store.recordSale(NewSale(productId, quantity, unitPriceMinor, allowOversell, buyer, sessionId))
    }.also { refreshQueue() }

    /** Every sale, oldest first. */
    @Throws(FieldCastException::class)
    suspend fun sales(): List<Sale> = io { store.sales() }

    /** The pins of a platform live session (the replay's chapters). */
    @Throws(FieldCastException::class)
    suspend fun pins(sessionId: String): List<Pin> = io { store.pins(sessionId) }

    /** How many outbox records are in each state. */
    @Throws(FieldCastException::class)
    suspend fun outboxCounts(): OutboxCounts = io { store.outboxCounts() }

    /** Whether the device has a network (from the connectivity callback). */
    fun setNetworkAvailable(available: Boolean) {
        if (!guard.isClosed) guard.use { engine?.setNetworkAvailable(available) }
    }

    /** Sends what waits now instead of after its backoff. */
    fun syncNow() = guard.use { engine?.syncNow() }

    /** Replaces the platform token (after a refresh) and resumes a relay paused for it. */
    fun setToken(token: String) = guard.use { engine?.setToken(token) }

    /** Drops a conflicted record after the farmer saw it. */
    @Throws(FieldCastException::class)
    suspend fun discardConflicted(recordId: String) = io { syncEngine().discardConflicted(recordId) }.also { refreshQueue() }

    /** Replaces the local catalog with the platform's; returns how many products it holds. */
    @Throws(FieldCastException::class)
    suspend fun refreshCatalog(): Long = io { syncEngine().refreshCatalog().toLong() }

    /** Uploads a replay file of a live session, resuming an earlier upload of it. */
    @Throws(FieldCastException::class)
    suspend fun uploadReplay(path: String, sessionId: String): UploadResult = io { syncEngine().uploadReplay(path, sessionId) }

    /**
     * Suspends until nothing is pending or in flight, or [timeoutMs] passes; true when idle. [queue]
     * is current when it returns.
     */
    suspend fun awaitIdle(timeoutMs: Long): Boolean = io { syncEngine().waitIdle(timeoutMs.toULong()) }.also { refreshQueue() }

    /** Stops the sync engine and releases the store. Idempotent; no event arrives after it returns. */
    override fun close() {
        if (!guard.close()) return
        queueWatch?.cancel()
        queueWatch?.destroy()
        queueRefreshes.close()
        refresher.cancel()
        subscriptions.releaseAll()
        engine?.stop()
        engine?.destroy()
        store.destroy()
    }

    private fun syncEngine(): SyncEngine =
        engine ?: throw FieldCastException.Sync(SyncFailure.INVALID_CONFIG, "this Commerce was opened without a SyncConfig")

    private suspend fun <T> io(block: () -> T): T = withContext(Dispatchers.IO) { guard.use(block) }

    private fun refreshQueue() {
        if (guard.isClosed) return
        val state = runCatching { guard.use { engine?.queueState() ?: countsOnly(store.outboxCounts()) } }
        state.getOrNull()?.let { _queue.value = it }
    }

    private companion object {
        fun emptyQueue() = QueueState(0u, 0u, 0u, 0u, 0u, null, emptyList())

        fun countsOnly(c: OutboxCounts) = QueueState(c.pending, c.inFlight, c.conflicted, c.synced, c.discarded, null, emptyList())
    }
}
