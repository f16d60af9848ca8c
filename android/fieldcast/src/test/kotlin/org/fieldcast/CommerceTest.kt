package org.fieldcast

import java.nio.file.Files
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.PauseReason
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.StreamProfile
import org.fieldcast.ffi.SyncConfig
import org.fieldcast.ffi.SyncEvent
import org.junit.Test

/** Selling from Kotlin: pins and offline sales reach the sandbox exactly once; conflicts are typed. */
class CommerceTest {
    @Test
    fun offlineSalesSyncExactlyOnceAndAConflictReachesKotlin(): Unit = runBlocking {
        Sandbox.start().use { sandbox ->
            val db = Files.createTempDirectory("fieldcast-kotlin-store").resolve("shop.db").toString()
            val sync = SyncConfig(sandbox.baseUrl, sandbox.token, backoffMinMs = 100u, backoffMaxMs = 1_000u)
            FieldCast.commerce(db, sync).use { commerce ->
                assertEquals(3L, commerce.refreshCatalog(), "the sandbox's seed catalog")
                val live = sandbox.createLiveSession()
                val config = SessionConfig(
                    ingestUrl = live.publishUrl,
                    source = MediaSource.TestPattern,
                    profile = StreamProfile.P270,
                    adaptiveBitrate = false,
                )
                FieldCast.streamer(config).use { streamer ->
                    streamer.linkCommerce(commerce, live.id)
                    withTimeout(15_000) { streamer.start() }
                    val pin = streamer.pin("orange-box")
                    assertEquals("orange-box", pin.productId)

                    commerce.setNetworkAvailable(false)
                    withTimeout(5_000) { commerce.queue.first { it.pausedReason == PauseReason.Offline } }
                    val sales = listOf(
                        commerce.sell("orange-box", 2, sessionId = live.id),
                        commerce.sell("honey-jar", 1, buyer = "Mei", sessionId = live.id),
                        commerce.sell("egg-tray", 3, sessionId = live.id),
                    )
                    val conflict = async(start = CoroutineStart.UNDISPATCHED) {
                        commerce.syncEvents.filterIsInstance<SyncEvent.Conflict>().first()
                    }
                    // The farmer sells at an old price: the platform refuses it with price_changed.
                    val stale = commerce.sell("honey-jar", 1, unitPriceMinor = 4000, sessionId = live.id)
                    assertEquals(4, commerce.queue.value.items.count { it.isSale }, "the four sales wait offline")
                    assertEquals("0", Regex("\"sales\"\\s*:\\s*(\\d+)").find(sandbox.request("GET", "/v1/_sandbox/stats"))!!.groupValues[1])

                    commerce.setNetworkAvailable(true)
                    val refused = withTimeout(15_000) { conflict.await() }
                    assertEquals(stale.id, refused.recordId)
                    assertEquals("price_changed", refused.code)
                    assertTrue(commerce.awaitIdle(15_000), "the outbox drains")
                    val queue = commerce.queue.value
                    assertEquals(1UL, queue.conflicted)

                    val onPlatform = sandbox.request("GET", "/v1/sales?session_id=${live.id}")
                    for (sale in sales) {
                        assertEquals(1, Regex(sale.id).findAll(onPlatform).count(), "sale ${sale.id} once on the platform")
                    }
                    assertEquals(0, Regex(stale.id).findAll(onPlatform).count(), "the refused sale is not counted")
                    assertEquals("3", Regex("\"sales\"\\s*:\\s*(\\d+)").find(sandbox.request("GET", "/v1/_sandbox/stats"))!!.groupValues[1])
                    val session = sandbox.request("GET", "/v1/live-sessions/${live.id}")
                    assertTrue(pin.id in session, "the platform has the pin: $session")
                    streamer.stop()
                }
            }
        }
    }
}
