package org.fieldcast.scenario

import java.io.File
import java.nio.file.Files
import kotlinx.coroutines.runBlocking
import org.fieldcast.FieldCast
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.PushOutcome
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.SessionState
import org.fieldcast.ffi.StreamProfile
import org.fieldcast.ffi.SyncConfig
import org.fieldcast.ffi.VideoFormat
import org.junit.AfterClass
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * What the device run does with the platform and the SDK, played on the desktop JVM against a real
 * platform sandbox (started by scripts/android-scenario-check.sh on loopback, `-Dfieldcast.api`,
 * `-Dfieldcast.token`) and the host build of the core: the platform calls of the instrumentation,
 * sales taken with the live session's id and counted as the device run counts them, and the test
 * pattern published live and recorded with a scenario's stream settings.
 */
class SandboxPathsJvmTest {
    private val api = System.getProperty("fieldcast.api") ?: error("-Dfieldcast.api is not set")
    private val token = System.getProperty("fieldcast.token") ?: error("-Dfieldcast.token is not set")
    private val platform = PlatformClient(api, token)

    /** Health, catalog, restock, live session, sales listing and end, as the instrumentation calls them. */
    @Test
    fun thePlatformCallsOfARun() {
        assertTrue(platform.healthy(5_000))
        assertFalse(PlatformClient("http://127.0.0.1:1", token).healthy(2_000))
        val products = platform.productIds()
        assertTrue(products.toString(), products.containsAll(listOf("orange-box", "honey-jar", "egg-tray")))
        assertEquals(products.size, platform.restock(100_000))
        val live = platform.createLiveSession("scenario check")
        assertTrue(live.publishUrl, live.publishUrl.startsWith("rtmp://127.0.0.1:"))
        val onEmulator = RunArguments.from { null }.publishUrlOnDevice(live.publishUrl)
        assertEquals(live.publishUrl.replace("127.0.0.1", "10.0.2.2"), onEmulator)
        assertEquals(emptyList<String>(), platform.saleIds(live.id))
        platform.endLiveSession(live.id)
    }

    /** Sales taken through the SDK with the session's id match the platform's as a run counts them. */
    @Test
    fun salesOfTheSessionAreCountedAsTheDeviceCountsThem() = runBlocking {
        val live = platform.createLiveSession("scenario check sales")
        val journalFile = File(dir, "journal.jsonl")
        FieldCast.commerce(File(dir, "shop.db").path, SyncConfig(baseUrl = api, token = token)).use { commerce ->
            assertTrue(commerce.refreshCatalog() >= 3)
            JournalWriter(journalFile, 1) { 1.0 }.use { journal ->
                repeat(2) {
                    val sale = commerce.sell("egg-tray", 1, sessionId = live.id)
                    journal.write(Events.SALE, "id" to sale.id, "product" to sale.productId, "quantity" to sale.quantity)
                }
                commerce.sell("honey-jar", 1) // not the live's: the platform lists it under no session
                assertTrue("the outbox did not drain", commerce.awaitIdle(30_000))
                val ids = commerce.sales().filter { it.sessionId == live.id }.joinToString(",") { it.id }
                journal.write(Events.STORE_SALES, "ids" to ids)
            }
        }
        val onPlatform = platform.saleIds(live.id)
        assertEquals(2, onPlatform.size)
        val scenario = Scenario.parse(
            """{"name":"s","device":"d","network":"n","duration_s":5,"timeline":[{"at_s":1,"action":"go_live"}]}""",
            "s",
        )
        val figures = Figures.compute(Timeline(scenario), Journal.read(journalFile), emptyList(), onPlatform, null)
        assertEquals(SalesFigures(taken = 2, inStore = 2, onPlatform = 2, lost = 0, doubled = 0, unknown = 0, notStored = 0), figures.sales)
        assertTrue(figures.sales.match)
    }

    /** The test pattern at a scenario's stream settings goes live and is recorded. */
    @Test
    fun theTestPatternGoesLiveAndIsRecorded() = runBlocking {
        val live = platform.createLiveSession("scenario check live")
        val (w, h) = TestPattern.sizeOf("270p")
        val pattern = TestPattern(w, h)
        val record = File(dir, "replay")
        val config = SessionConfig(
            ingestUrl = live.publishUrl,
            source = MediaSource.App(VideoFormat(PixelFormat.NV12, w.toUInt(), h.toUInt()), null),
            profile = StreamProfile.P270,
            adaptiveBitrate = true,
            recordDir = record.path,
        )
        FieldCast.streamer(config).use { streamer ->
            streamer.start(awaitLive = false)
            val start = System.nanoTime()
            var accepted = 0
            for (n in 0 until 150L) { // 5 s at 30 fps, timestamps on one clock as the pump's
                val at = start + n * 1_000_000_000L / 30
                val wait = (at - System.nanoTime()) / 1_000_000
                if (wait > 0) Thread.sleep(wait)
                if (streamer.pushVideoFrame(PixelFormat.NV12, w, h, pattern.planes(n), at / 1_000) == PushOutcome.QUEUED) accepted++
            }
            assertEquals(SessionState.LIVE, streamer.state.value)
            assertTrue("only $accepted of 150 frames taken", accepted > 100)
            assertEquals(SessionState.ENDED, streamer.stop())
        }
        val segments = record.listFiles()?.filter { SellerRun.SEGMENT.matches(it.name) }.orEmpty()
        assertTrue("no recording segment in $record: ${record.list()?.toList()}", segments.isNotEmpty())
        assertTrue(segments.all { it.length() > 0 })
        platform.endLiveSession(live.id)
    }

    /** A directory for the phone's files, removed after the class. */
    companion object {
        private val dir: File = Files.createTempDirectory("fieldcast-scenario-check").toFile()

        /** Removes the phone's files. */
        @JvmStatic
        @AfterClass
        fun removeFiles() {
            dir.deleteRecursively()
        }
    }
}
