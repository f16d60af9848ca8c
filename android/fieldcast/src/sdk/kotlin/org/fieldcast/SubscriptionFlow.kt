package org.fieldcast

import kotlinx.coroutines.channels.BufferOverflow
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import org.fieldcast.ffi.Subscription

/** Events a slow collector may fall behind by before the oldest are dropped (as in the core). */
private const val EVENT_BUFFER = 256

/**
 * A cold flow with one native subscription per collection, made in the collector's own coroutine
 * before it first suspends: a collection started with `CoroutineStart.UNDISPATCHED` before a call
 * sees every event that call causes. [subscribe] returns null when there is nothing to subscribe to
 * (the flow then completes); [register] records the subscription with what ends this collection
 * (called by the owner's close); [release] cancels it. Events reach the collector on its own
 * dispatcher.
 */
internal fun <T> subscriptionFlow(
    subscribe: ((T) -> Unit) -> Subscription?,
    register: (Subscription, end: () -> Unit) -> Unit,
    release: (Subscription) -> Unit,
): Flow<T> = flow {
    val channel = Channel<T>(EVENT_BUFFER, BufferOverflow.DROP_OLDEST)
    val own = subscribe { channel.trySend(it) } ?: return@flow
    register(own) { channel.close() }
    try {
        for (event in channel) emit(event)
    } finally {
        release(own)
    }
}
