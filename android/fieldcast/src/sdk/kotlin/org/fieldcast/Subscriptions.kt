package org.fieldcast

import java.util.concurrent.ConcurrentHashMap
import kotlinx.coroutines.channels.BufferOverflow
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import org.fieldcast.ffi.Subscription

/** Events a slow collector may fall behind by before the oldest are dropped (as in the core). */
private const val EVENT_BUFFER = 256

/**
 * The native subscriptions an owner ([Streamer], [Commerce]) hands out, each with what ends it, so
 * that the owner's close cancels them all; a subscription added after [guard] closed is released
 * at once.
 */
internal class Subscriptions(private val guard: Closing) {
    private val running = ConcurrentHashMap<Subscription, () -> Unit>()

    /**
     * A cold flow with one subscription per collection, made in the collector's own coroutine before
     * it first suspends: a collection started with `CoroutineStart.UNDISPATCHED` before a call sees
     * every event that call causes. [subscribe] returns null when there is nothing to subscribe to
     * (the flow then completes). Events reach the collector on its own dispatcher.
     */
    fun <T> flow(subscribe: ((T) -> Unit) -> Subscription?): Flow<T> = kotlinx.coroutines.flow.flow {
        val channel = Channel<T>(EVENT_BUFFER, BufferOverflow.DROP_OLDEST)
        val own = subscribe { channel.trySend(it) } ?: return@flow
        add(own) { channel.close() }
        try {
            for (event in channel) emit(event)
        } finally {
            release(own)
        }
    }

    /** Records [own], with what ends its consumer when the owner closes. */
    fun add(own: Subscription, end: () -> Unit = {}) {
        running[own] = end
        if (guard.isClosed) release(own)
    }

    /** Cancels [own] (nothing is delivered after this returns) and ends its consumer. */
    fun release(own: Subscription) {
        val end = running.remove(own) ?: return
        own.cancel()
        own.destroy()
        end()
    }

    /** Releases every subscription: the owner closes. */
    fun releaseAll() = running.keys.toList().forEach(::release)
}
