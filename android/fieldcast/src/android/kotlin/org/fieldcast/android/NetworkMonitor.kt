package org.fieldcast.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicBoolean

/**
 * Watches the device's default network and tells every listener whether there is one, e.g.
 * `monitor.addListener(streamer::setNetworkAvailable)` and
 * `monitor.addListener(commerce::setNetworkAvailable)`: a network that comes back cuts the
 * reconnect and sync waits short, and sync pauses while there is none.
 *
 * Registers its callback with [ConnectivityManager.registerDefaultNetworkCallback] when created
 * (needs ACCESS_NETWORK_STATE, declared by the library) and unregisters it on [close]. Listeners
 * are called on a system thread; a new listener hears the current state at once.
 */
class NetworkMonitor(context: Context) : AutoCloseable {
    private val connectivity: ConnectivityManager = context.getSystemService(ConnectivityManager::class.java)
    private val listeners = CopyOnWriteArrayList<(Boolean) -> Unit>()
    private val closed = AtomicBoolean(false)

    /** Whether the device has a default network now. */
    @Volatile
    var isAvailable: Boolean = connectivity.activeNetwork != null
        private set

    private val callback = object : ConnectivityManager.NetworkCallback() {
        override fun onAvailable(network: Network) = report(true)

        override fun onLost(network: Network) = report(false)
    }

    init {
        connectivity.registerDefaultNetworkCallback(callback)
    }

    /** Adds [listener] and calls it with the current state. */
    fun addListener(listener: (Boolean) -> Unit) {
        listeners += listener
        listener(isAvailable)
    }

    /** Removes a listener added before; it hears nothing more. */
    fun removeListener(listener: (Boolean) -> Unit) {
        listeners -= listener
    }

    /** Unregisters from the system; no listener is called after this returns. Idempotent. */
    override fun close() {
        if (!closed.compareAndSet(false, true)) return
        connectivity.unregisterNetworkCallback(callback)
        listeners.clear()
    }

    private fun report(available: Boolean) {
        isAvailable = available
        listeners.forEach { it(available) }
    }
}
