package org.fieldcast.android

import android.net.ConnectivityManager
import java.io.File
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.fieldcast.Commerce
import org.fieldcast.FieldCast
import org.fieldcast.ffi.PauseReason
import org.fieldcast.ffi.QueueState
import org.fieldcast.ffi.SyncConfig
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowNetwork

/** The default-network callback reaching the real core through [NetworkMonitor]. */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34])
class NetworkMonitorTest {
    @get:Rule
    val folder = TemporaryFolder()

    private val context = RuntimeEnvironment.getApplication()
    private val connectivity = context.getSystemService(ConnectivityManager::class.java)
    private val network = ShadowNetwork.newInstance(100)

    @Test
    fun losingTheDefaultNetworkPausesSyncAndItsReturnResumesIt() {
        // Nothing listens on port 1: the engine can only retry, and never pauses for the server.
        val sync = SyncConfig(baseUrl = "http://127.0.0.1:1", token = "token")
        FieldCast.commerce(File(folder.root, "shop.db").path, sync).use { commerce ->
            NetworkMonitor(context).use { monitor ->
                monitor.addListener(commerce::setNetworkAvailable)
                assertNull(commerce.queue.value.pausedReason)
                val callback = shadowOf(connectivity).networkCallbacks.single()

                callback.onLost(network)
                commerce.awaitQueue { it.pausedReason == PauseReason.Offline }

                callback.onAvailable(network)
                commerce.awaitQueue { it.pausedReason == null }
            }
        }
    }

    @Test
    fun everyListenerHearsTheCurrentStateThenEachChange() {
        NetworkMonitor(context).use { monitor ->
            val first = mutableListOf<Boolean>()
            val second = mutableListOf<Boolean>()
            monitor.addListener { first += it }
            val callback = shadowOf(connectivity).networkCallbacks.single()
            callback.onLost(network)
            monitor.addListener { second += it }
            callback.onAvailable(network)

            assertEquals(listOf(true, false, true), first)
            assertEquals(listOf(false, true), second)
            assertTrue(monitor.isAvailable)
        }
    }

    @Test
    fun closingUnregistersTheCallbackAndSilencesListeners() {
        val heard = mutableListOf<Boolean>()
        val monitor = NetworkMonitor(context)
        monitor.addListener { heard += it }
        val callback = shadowOf(connectivity).networkCallbacks.single()

        monitor.close()
        monitor.close()
        callback.onLost(network)

        assertTrue(shadowOf(connectivity).networkCallbacks.isEmpty())
        assertEquals(listOf(true), heard)
    }

    private fun Commerce.awaitQueue(predicate: (QueueState) -> Boolean) = runBlocking {
        withTimeout(5_000) { queue.first(predicate) }
    }
}
