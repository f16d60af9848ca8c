package org.fieldcast

import java.nio.ByteBuffer
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.PushOutcome
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.SessionState
import org.fieldcast.ffi.StreamProfile
import org.fieldcast.ffi.VideoFormat
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test

/** Many sessions and many frames: memory stays flat, close is idempotent, nothing arrives after it. */
class LifecycleTest {
    companion object {
        private lateinit var sandbox: Sandbox
        private lateinit var publishUrl: String

        @BeforeClass @JvmStatic
        fun startSandbox() {
            sandbox = Sandbox.start()
            publishUrl = sandbox.createLiveSession("lifecycle").publishUrl
        }

        @AfterClass @JvmStatic
        fun stopSandbox() = sandbox.close()

        const val CYCLES = 200
        const val WARM_UP = 20
        const val PUSHES = 100_000
    }

    private fun config() = SessionConfig(
        ingestUrl = publishUrl,
        source = MediaSource.App(VideoFormat(PixelFormat.I420, 320u, 180u), null),
        profile = StreamProfile.P270,
        adaptiveBitrate = false,
    )

    private val planes = listOf(
        VideoPlane(ByteBuffer.allocateDirect(320 * 180), 320, 1),
        VideoPlane(ByteBuffer.allocateDirect(160 * 90), 160, 1),
        VideoPlane(ByteBuffer.allocateDirect(160 * 90), 160, 1),
    )

    /** Resident memory after a collection, so that garbage awaiting collection is not counted. */
    private fun settledRssKib(): Long {
        repeat(3) { System.gc(); Thread.sleep(100) }
        return rssKib()
    }

    /** One create/start/push/stop/close cycle; counts events that arrive after close. */
    private suspend fun cycle(n: Int, lateEvents: AtomicInteger) {
        val streamer = FieldCast.streamer(config())
        val closed = AtomicBoolean(false)
        streamer.subscribe { if (closed.get()) lateEvents.incrementAndGet() }
        streamer.start(awaitLive = false)
        streamer.pushVideoFrame(PixelFormat.I420, 320, 180, planes, 0)
        val ended = withTimeoutOrNull(15_000) { streamer.stop() }
        check(ended == SessionState.ENDED) { "cycle $n: stop gave $ended, the session is ${streamer.state.value}" }
        streamer.close()
        closed.set(true)
        streamer.close()
    }

    /** [count] pushes as fast as the caller can make them into one session; most are dropped. */
    private suspend fun pushes(count: Int) {
        FieldCast.streamer(config()).use { streamer ->
            streamer.start(awaitLive = false)
            var queued = 0
            repeat(count) {
                if (streamer.pushVideoFrame(PixelFormat.I420, 320, 180, planes) == PushOutcome.QUEUED) queued++
            }
            check(withTimeoutOrNull(15_000) { streamer.stop() } == SessionState.ENDED) { "the pushed session did not end" }
            println("lifecycle: $count pushes, $queued queued, the rest dropped by the full queue")
        }
    }

    @Test
    fun cyclesAndPushesKeepMemoryFlatAndNothingArrivesAfterClose(): Unit = runBlocking {
        val lateEvents = AtomicInteger()
        // Warm-up: the first cycles and as many pushes as measured after it, so that caches, pools,
        // allocator arenas and the garbage JNA leaves between collections reach their working size;
        // a leak goes on growing after it.
        for (n in 1..WARM_UP) cycle(n, lateEvents)
        pushes(PUSHES)
        val rssAfterWarmUp = settledRssKib()
        val samples = mutableListOf<Long>()
        for (n in WARM_UP + 1..CYCLES) {
            cycle(n, lateEvents)
            if (n % 60 == 0) samples += settledRssKib() / 1024
        }
        pushes(PUSHES)
        val rssEnd = settledRssKib()
        Thread.sleep(300)
        assertEquals(0, lateEvents.get(), "events delivered after close")
        val growth = (rssEnd - rssAfterWarmUp) * 100.0 / rssAfterWarmUp
        println(
            "lifecycle: RSS after warm-up ($WARM_UP cycles, $PUSHES pushes) ${rssAfterWarmUp / 1024} MiB; " +
                "every 60 cycles $samples MiB; after $CYCLES cycles and $PUSHES more pushes ${rssEnd / 1024} MiB: " +
                "growth %.1f %% (target < 5 %%)".format(growth),
        )
        check(growth < 5.0) { "RSS grew %.1f %% after warm-up (target < 5 %%)".format(growth) }
    }
}
