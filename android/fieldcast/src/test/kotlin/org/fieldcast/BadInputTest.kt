package org.fieldcast

import java.nio.ByteBuffer
import java.nio.file.Files
import java.util.Collections
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.fieldcast.ffi.CommerceFailure
import org.fieldcast.ffi.FieldCastException
import org.fieldcast.ffi.IngestCause
import org.fieldcast.ffi.IngestFailure
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.PushOutcome
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.SessionEvent
import org.fieldcast.ffi.SessionState
import org.fieldcast.ffi.StreamProfile
import org.fieldcast.ffi.VideoFormat
import org.junit.Test

/** Bad input from Kotlin gets a typed exception, and the JVM and the session go on. */
class BadInputTest {
    private fun appConfig(url: String = "rtmp://127.0.0.1:1/live/bad") = SessionConfig(
        ingestUrl = url,
        source = MediaSource.App(VideoFormat(PixelFormat.NV21, 320u, 180u), null),
        profile = StreamProfile.P270,
    )

    private fun nv21(w: Int = 320, h: Int = 180, lumaBytes: Int = w * h) = listOf(
        VideoPlane(ByteBuffer.allocateDirect(lumaBytes), w, 1),
        VideoPlane(ByteBuffer.allocateDirect(w * h / 2), w, 2),
    )

    @Test
    fun badUrlsAndConfigurationsAreTyped() {
        for (url in listOf("", "not a url", "http://example.com/live/key", "rtmp://", "rtmp://host:99999/live/k")) {
            val e = assertFailsWith<FieldCastException> { FieldCast.streamer(appConfig(url)) }
            check(e is FieldCastException.InvalidUrl || e is FieldCastException.InvalidConfig) { "$url: $e" }
        }
        assertFailsWith<FieldCastException.InvalidConfig> { FieldCast.streamer(appConfig().copy(fps = 0u)) }
        assertFailsWith<FieldCastException.InvalidConfig> { FieldCast.streamer(appConfig().copy(videoKbps = 1u)) }
    }

    /** A test-pattern session to [url], trusting [caPem] besides the system's roots. */
    private fun ingestConfig(url: String, caPem: String? = null) = SessionConfig(
        ingestUrl = url,
        source = MediaSource.TestPattern,
        profile = StreamProfile.P270,
        adaptiveBitrate = false,
        ingestCaPem = caPem,
    )

    /** The ingest failure that ends a session to [url] before it is live. */
    private suspend fun ingestFailure(url: String, caPem: String? = null): FieldCastException.Ingest =
        FieldCast.streamer(ingestConfig(url, caPem)).use { streamer ->
            assertFailsWith<FieldCastException.Ingest> { withTimeout(15_000) { streamer.start() } }
        }

    @Test
    fun ingestFailuresNameTheirCause(): Unit = runBlocking {
        // Nothing listens on port 1: refused, reported by start() and as an event.
        FieldCast.streamer(ingestConfig("rtmp://127.0.0.1:1/live/key")).use { streamer ->
            val failures = Collections.synchronizedList(mutableListOf<FieldCastException>())
            streamer.subscribe { if (it is SessionEvent.Failure) failures += it.error }
            val refused = assertFailsWith<FieldCastException.Ingest> { withTimeout(15_000) { streamer.start() } }
            assertEquals(IngestFailure.UNREACHABLE to IngestCause.REFUSED, refused.failure to refused.ingestCause)
            assertFalse(refused.ingestCause.isTls())
            withTimeout(5_000) { while (failures.isEmpty()) delay(20) }
            val event = failures.first()
            check(event is FieldCastException.Ingest && event.ingestCause == IngestCause.REFUSED) { "the event: $event" }
        }

        // TLS: a CA that is not PEM is refused at once; the certificate is for `localhost`, signed by a private CA.
        assertFailsWith<FieldCastException.InvalidConfig> {
            FieldCast.streamer(ingestConfig("rtmps://localhost:1/live/key", caPem = "not a certificate"))
        }
        TestCa().use { ca ->
            TlsFront(ca, backendPort = 1).use { front ->
                val systemOnly = ingestFailure("rtmps://localhost:${front.port}/live/key")
                assertEquals(IngestFailure.UNREACHABLE to IngestCause.TLS_UNKNOWN_ISSUER, systemOnly.failure to systemOnly.ingestCause)
                assertTrue(systemOnly.ingestCause.isTls())
                val unrelated = TestCa().use { other -> ingestFailure("rtmps://localhost:${front.port}/live/key", other.caPem) }
                assertEquals(IngestCause.TLS_UNKNOWN_ISSUER, unrelated.ingestCause, unrelated.detail)
                // The CA is trusted now, and the certificate does not name the address.
                val address = ingestFailure("rtmps://127.0.0.1:${front.port}/live/key", ca.caPem)
                assertEquals(IngestCause.TLS_NAME_MISMATCH, address.ingestCause, address.detail)
                assertEquals(0, front.handshakes, "a publisher that refuses the certificate sets up no TLS session")
            }
        }
    }

    @Test
    fun malformedFramesAreRejectedAndTheSessionGoesOn(): Unit = runBlocking {
        // An ingest that accepts the connection and never answers keeps the session connecting.
        val silent = java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())
        FieldCast.streamer(appConfig("rtmp://127.0.0.1:${silent.localPort}/live/key")).use { streamer ->
            val idle = assertFailsWith<FieldCastException.InvalidState> { streamer.pushVideoFrame(PixelFormat.NV21, 320, 180, nv21()) }
            assertEquals(SessionState.IDLE, idle.state)
            streamer.start(awaitLive = false)
            val short = assertFailsWith<FieldCastException.InvalidFrame> {
                streamer.pushVideoFrame(PixelFormat.NV21, 320, 180, nv21(lumaBytes = 1000))
            }
            check("plane 0" in short.detail) { short.detail }
            assertFailsWith<FieldCastException.InvalidFrame> { streamer.pushVideoFrame(PixelFormat.NV21, 640, 360, nv21(640, 360)) }
            assertFailsWith<FieldCastException.InvalidFrame> { streamer.pushVideoFrame(PixelFormat.NV21, 321, 180, nv21()) }
            assertFailsWith<FieldCastException.InvalidFrame> { streamer.pushVideoFrame(PixelFormat.NV21, 320, 180, nv21().take(1)) }
            assertFailsWith<FieldCastException.InvalidFrame> { streamer.pushVideoFrame(PixelFormat.NV21, -2, 180, nv21()) }
            assertFailsWith<FieldCastException.InvalidFrame> {
                streamer.pushVideoFrame(PixelFormat.NV21, 320, 180, listOf(VideoPlane(ByteBuffer.allocate(320 * 180), 320, 1), nv21()[1]))
            }
            assertFailsWith<FieldCastException.InvalidFrame> { streamer.pushAudio(ByteBuffer.allocateDirect(64)) }
            assertEquals(PushOutcome.QUEUED, streamer.pushVideoFrame(PixelFormat.NV21, 320, 180, nv21()))
            // The state flow follows the session's events, delivered on their own thread.
            assertEquals(SessionState.CONNECTING, withTimeout(5_000) { streamer.state.first { it != SessionState.IDLE } })
            streamer.stop()
        }
        silent.close()
    }

    @Test
    fun callsOnAClosedStreamerAreTyped(): Unit = runBlocking {
        val streamer = FieldCast.streamer(appConfig())
        streamer.close()
        streamer.close()
        assertFailsWith<FieldCastException.Closed> { streamer.pushVideoFrame(PixelFormat.NV21, 320, 180, nv21()) }
        assertFailsWith<FieldCastException.Closed> { streamer.start() }
        assertFailsWith<FieldCastException.Closed> { streamer.stop() }
        assertFailsWith<FieldCastException.Closed> { streamer.pin("orange-box") }
        assertFailsWith<FieldCastException.Closed> { streamer.subscribe { } }
        streamer.setNetworkAvailable(true)
    }

    @Test
    fun commerceRefusalsAreTyped(): Unit = runBlocking {
        val db = Files.createTempDirectory("fieldcast-kotlin-bad").resolve("shop.db").toString()
        val commerce = FieldCast.commerce(db)
        val unknown = assertFailsWith<FieldCastException.Commerce> { commerce.sell("no-such-product") }
        assertEquals(CommerceFailure.UNKNOWN_PRODUCT, unknown.failure)
        assertFailsWith<FieldCastException.Sync> { commerce.refreshCatalog() }
        commerce.close()
        commerce.close()
        assertFailsWith<FieldCastException.Closed> { commerce.products() }
        assertFailsWith<FieldCastException.Storage> { FieldCast.commerce("/proc/no/such/dir/shop.db") }
        Unit
    }
}
