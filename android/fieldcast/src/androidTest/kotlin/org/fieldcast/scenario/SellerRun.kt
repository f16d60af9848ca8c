package org.fieldcast.scenario

import android.content.Context
import android.os.Process
import android.os.SystemClock
import android.system.Os
import android.system.OsConstants
import java.io.File
import kotlin.concurrent.thread
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import org.fieldcast.Commerce
import org.fieldcast.FieldCast
import org.fieldcast.Streamer
import org.fieldcast.android.NetworkMonitor
import org.fieldcast.android.init
import org.fieldcast.ffi.FieldCastException
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.Pin
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.SessionEvent
import org.fieldcast.ffi.SessionState
import org.fieldcast.ffi.StreamProfile
import org.fieldcast.ffi.SyncConfig
import org.fieldcast.ffi.VideoFormat

/**
 * The app's part of a scenario run, played in real time in this process with the SDK as an app
 * uses it: `FieldCast.init`, a [Commerce] with sync to the platform, a [NetworkMonitor] feeding the
 * session and the sync engine, a [Streamer] fed with a generated [TestPattern] instead of the
 * camera (paused while in the background, capped on a low battery), pins and sales at their
 * moments, the end and the replay upload. Everything it does and measures goes to the journal:
 * states, one-second statistics, one usage sample a second (`/proc/self/status` VmRSS and VmHWM,
 * `Process.getElapsedCpuTime`), sales, pins and failures.
 *
 * Started again after a kill at [SellerPlan.resumeAtS], it opens the same store and, when the
 * live had not ended, goes live again at once (as the farmer would), keeping the frame-rate cap
 * in force; the cues it missed while dead are not played. After the last cue and the end of the
 * run it waits for the outbox to drain and records the store's sales.
 */
class SellerRun(private val context: Context, private val plan: SellerPlan) {
    private val journal = JournalWriter(File(plan.dir, JOURNAL_FILE), Process.myPid(), ::now)
    private val scenario = Scenario.parse(plan.scenarioJson, "the run's scenario")
    private val timeline = Timeline(scenario)
    private val recordDir = File(plan.dir, RECORD_DIR)
    private val pump = FramePump(::now) { e -> journal.write(Events.FAILED, "what" to "push a frame", "message" to describe(e)) }
    private var commerce: Commerce? = null
    private var network: NetworkMonitor? = null
    private val onCommerceNetwork: (Boolean) -> Unit = { commerce?.setNetworkAvailable(it) }

    @Volatile
    private var live: Live? = null
    private var openPin: Pin? = null
    private var pattern: TestPattern? = null

    @Volatile
    private var sampling = true
    private var sampler: Thread? = null

    @Volatile
    private var sessionState = SessionState.IDLE

    /** A live of this process: its streamer, the journal's subscription to it, and its network listener. */
    private class Live(val streamer: Streamer, val events: AutoCloseable, val onNetwork: (Boolean) -> Unit)

    /** Plays the run from [SellerPlan.resumeAtS] to its end, then writes `done` (or `aborted`) to the journal. */
    fun run() {
        journal.write(Events.STARTED, "resume_at" to plan.resumeAtS)
        try {
            runBlocking { play() }
            release()
            journal.write(Events.DONE)
        } catch (e: Exception) {
            journal.write(Events.ABORTED, "message" to describe(e))
            release()
            throw e
        } finally {
            journal.close()
        }
    }

    private suspend fun play() {
        FieldCast.init(context)
        val commerce = FieldCast.commerce(File(plan.dir, STORE_FILE).path, SyncConfig(baseUrl = plan.api, token = plan.token))
        this.commerce = commerce
        network = NetworkMonitor(context).apply { addListener(onCommerceNetwork) }
        if (commerce.products().isEmpty()) attempt("fetch the catalog") { commerce.refreshCatalog() }
        sampler = thread(name = "fieldcast-usage", isDaemon = true) { sample() }
        // The pictures are made before the live, as a camera is opened before it.
        scenario.timeline.firstNotNullOfOrNull { it.action as? Action.GoLive }?.let { go ->
            val (w, h) = TestPattern.sizeOf(go.profile)
            pattern = TestPattern(w, h)
        }
        if (plan.resumeAtS > 0) {
            val state = timeline.sellerStateAt(plan.resumeAtS)
            pump.maxFps = state.maxFps
            state.backgroundUntilS?.let { pump.pausedUntilS = it }
            state.live?.let { go -> cue("go_live_again", "go live again after the restart", null) { goLive(go) } }
        }
        for (cue in timeline.sellerCuesFrom(plan.resumeAtS)) {
            waitUntil(cue.atS)
            play(cue)
        }
        waitUntil(scenario.durationS)
        if (live != null) cue("end_of_run", "the run is over: end the live", null) { endLive() }
        val idle = commerce.awaitIdle(DRAIN_MS)
        val counts = commerce.outboxCounts()
        journal.write(
            Events.OUTBOX,
            "idle" to idle,
            "pending" to counts.pending.toLong(),
            "in_flight" to counts.inFlight.toLong(),
            "conflicted" to counts.conflicted.toLong(),
            "synced" to counts.synced.toLong(),
        )
        val sales = commerce.sales().filter { it.sessionId == plan.sessionId }
        journal.write(Events.STORE_SALES, "ids" to sales.joinToString(",") { it.id })
    }

    private suspend fun play(cue: Cue.Seller) = when (cue) {
        is Cue.GoLive -> cue("go_live", cue.label(), cue.step) { goLive(cue.action) }
        is Cue.Pin -> cue("pin", cue.label(), cue.step) { pin(cue.product) }
        is Cue.Unpin -> cue("unpin", cue.label(), cue.step) { unpin() }
        is Cue.Sell -> cue("sell", cue.label(), cue.step) {
            val sale = commerce!!.sell(cue.product, cue.quantity, sessionId = plan.sessionId)
            journal.write(Events.SALE, "id" to sale.id, "product" to sale.productId, "quantity" to sale.quantity)
        }
        is Cue.Background -> cue("background", cue.label(), cue.step) { pump.pausedUntilS = cue.untilS }
        is Cue.FrameCap -> cue("frame_cap", cue.label(), cue.step) { pump.maxFps = cue.maxFps }
        is Cue.End -> cue("end", cue.label(), cue.step) { endLive() }
        is Cue.UploadReplay -> cue("upload_replay", cue.label(), cue.step) { upload() }
    }

    /** Journals the cue, runs it, and journals what failed instead of stopping the run. */
    private suspend fun cue(kind: String, label: String, step: Int?, block: suspend () -> Unit) {
        journal.write(Events.CUE, "kind" to kind, "label" to label, "step" to step)
        attempt(label, block)
    }

    private suspend fun attempt(what: String, block: suspend () -> Unit) {
        try {
            block()
        } catch (e: FieldCastException) {
            journal.write(Events.FAILED, "what" to what, "message" to describe(e))
        } catch (e: IllegalStateException) {
            journal.write(Events.FAILED, "what" to what, "message" to describe(e))
        }
    }

    private suspend fun goLive(go: Action.GoLive) {
        check(live == null) { "already live" }
        val pattern = pattern ?: TestPattern.sizeOf(go.profile).let { (w, h) -> TestPattern(w, h) }
        val config = SessionConfig(
            ingestUrl = plan.publishUrl,
            source = MediaSource.App(VideoFormat(PixelFormat.NV12, pattern.width.toUInt(), pattern.height.toUInt()), null),
            profile = profileOf(go.profile),
            adaptiveBitrate = go.abr,
            recordDir = if (go.record) recordDir.path else null,
        )
        val streamer = FieldCast.streamer(config)
        try {
            val events = streamer.subscribe { event -> onSessionEvent(event) }
            streamer.linkCommerce(commerce!!, plan.sessionId)
            val onNetwork: (Boolean) -> Unit = { streamer.setNetworkAvailable(it) }
            live = Live(streamer, events, onNetwork)
            network!!.addListener(onNetwork)
            pump.start(streamer, pattern)
            streamer.start(awaitLive = false)
        } catch (e: FieldCastException) {
            closeLive()
            throw e
        }
    }

    private fun onSessionEvent(event: SessionEvent) {
        when (event) {
            is SessionEvent.StateChanged -> {
                sessionState = event.to
                journal.write(Events.STATE, "from" to event.from.name, "to" to event.to.name)
            }
            is SessionEvent.Stats -> {
                val s = event.stats
                journal.write(
                    Events.STATS,
                    "state" to sessionState.name,
                    "bytes_sent" to s.bytesSent.toLong(),
                    "input_fps" to s.inputFps,
                    "output_fps" to s.outputFps,
                    "video_kbps" to s.videoKbps,
                    "target_kbps" to s.targetVideoKbps.toLong(),
                    "dropped_frames" to s.droppedFrames.toLong(),
                )
            }
            is SessionEvent.Failure -> journal.write(Events.SESSION_ERROR, "message" to describe(event.error))
            is SessionEvent.Adapted -> {}
        }
    }

    private suspend fun pin(product: String) {
        val streamer = live?.streamer ?: throw IllegalStateException("not live in this process")
        openPin?.let { open ->
            streamer.unpin(open.id)
            journal.write(Events.UNPIN, "id" to open.id)
            openPin = null
        }
        val pin = streamer.pin(product)
        openPin = pin
        journal.write(Events.PIN, "id" to pin.id, "product" to pin.productId)
    }

    private suspend fun unpin() {
        val streamer = live?.streamer ?: throw IllegalStateException("not live in this process")
        val open = openPin
        if (open == null) {
            // After a restart the new process has not pinned anything: nothing to end.
            journal.write(Events.NOTE, "message" to "unpin: no pin is open in this process")
            return
        }
        streamer.unpin(open.id)
        openPin = null
        journal.write(Events.UNPIN, "id" to open.id)
    }

    private suspend fun endLive() {
        val current = live ?: throw IllegalStateException("not live in this process")
        pump.stop()
        val ended = withTimeoutOrNull(STOP_TIMEOUT_MS) { current.streamer.stop() }
        openPin = null
        closeLive(ended ?: SessionState.ENDED)
        check(ended != null) { "the live did not end within ${STOP_TIMEOUT_MS / 1000} s" }
        check(ended == SessionState.ENDED) { "the live ended as $ended" }
    }

    private suspend fun upload() {
        val files = recordDir.listFiles()?.filter { SEGMENT.matches(it.name) }?.sortedBy { it.name }.orEmpty()
        check(files.isNotEmpty()) { "no recording file in $recordDir" }
        var bytes = 0L
        for (file in files) bytes += commerce!!.uploadReplay(file.path, plan.sessionId).size.toLong()
        journal.write(Events.REPLAY, "files" to files.size, "bytes" to bytes)
    }

    /**
     * Closes this process's live, if any (a running stream is ended by the close), and records it
     * as [final]: the subscription closed here may not have delivered the last state change.
     */
    private fun closeLive(final: SessionState = SessionState.ENDED) {
        val current = live ?: return
        live = null
        pump.stop()
        network?.removeListener(current.onNetwork)
        current.events.close()
        current.streamer.close()
        sessionState = final
    }

    private fun release() {
        sampling = false
        sampler?.interrupt()
        sampler?.join()
        sampler = null
        pump.close()
        closeLive()
        network?.close()
        network = null
        commerce?.close()
        commerce = null
    }

    /** One usage sample a second until [release]. */
    private fun sample() {
        val cores = Os.sysconf(OsConstants._SC_NPROCESSORS_CONF)
        while (sampling) {
            val status = runCatching { File("/proc/self/status").readLines() }.getOrDefault(emptyList())
            fun mb(key: String) = status.firstOrNull { it.startsWith("$key:") }
                ?.substringAfter(':')?.trim()?.substringBefore(' ')?.toLongOrNull()?.let { it / 1024.0 }
            journal.write(
                Events.USAGE,
                "state" to sessionState.name,
                "cpu_ms" to Process.getElapsedCpuTime(),
                "rss_mb" to mb("VmRSS"),
                "hwm_mb" to mb("VmHWM"),
                "cores" to cores,
            )
            try {
                Thread.sleep(1_000)
            } catch (e: InterruptedException) {
                return
            }
        }
    }

    private suspend fun waitUntil(atS: Double) {
        val ms = ((atS - now()) * 1000).toLong()
        if (ms > 0) delay(ms)
    }

    private fun now(): Double = (SystemClock.elapsedRealtime() - plan.epochElapsedMs) / 1000.0

    /** File names shared with the instrumentation, which reads them after the run. */
    companion object {
        /** The journal, in the run's directory. */
        const val JOURNAL_FILE = "journal.jsonl"

        /** The app's store. */
        const val STORE_FILE = "shop.db"

        /** The recording's directory. */
        const val RECORD_DIR = "replay"

        /** The recording's segments, as the core names them. */
        val SEGMENT = Regex("fieldcast-[0-9]{5}\\.mp4")

        private const val DRAIN_MS = 120_000L
        private const val STOP_TIMEOUT_MS = 30_000L

        private fun profileOf(name: String): StreamProfile = when (name) {
            "270p" -> StreamProfile.P270
            "360p" -> StreamProfile.P360
            "480p" -> StreamProfile.P480
            "720p" -> StreamProfile.P720
            else -> throw IllegalArgumentException("profile `$name` is not one of ${Scenario.PROFILES.joinToString()}")
        }
    }
}

/**
 * Pushes the test pattern to the live's streamer on its own thread at 30 frames per second (or
 * [maxFps] when capped), with capture times on the boot clock as the camera gives them; no frame
 * while the run's clock is before [pausedUntilS] (the app in the background) or the session is not
 * taking media. Frame errors other than a session that ended go to [onError], once per message.
 */
class FramePump(private val clock: () -> Double, private val onError: (Exception) -> Unit) {
    /** The frame-rate cap, null for none. */
    @Volatile
    var maxFps: Int? = null

    /** No frames until this second of the run. */
    @Volatile
    var pausedUntilS: Double = 0.0

    @Volatile
    private var target: Pair<Streamer, TestPattern>? = null

    @Volatile
    private var running = false
    private var worker: Thread? = null
    private val reported = HashSet<String>()

    /** Pushes [pattern] to [streamer] from now on (starting the thread the first time). */
    @Synchronized
    fun start(streamer: Streamer, pattern: TestPattern) {
        target = streamer to pattern
        if (worker == null) {
            running = true
            worker = thread(name = "fieldcast-frames") { loop() }
        }
    }

    /** Stops pushing (the camera closes with the live); [start] pushes again. */
    fun stop() {
        target = null
    }

    /** Stops the thread and waits for it. */
    @Synchronized
    fun close() {
        running = false
        target = null
        worker?.join()
        worker = null
    }

    private fun loop() {
        var n = 0L
        var next = SystemClock.elapsedRealtimeNanos()
        while (running) {
            val period = 1_000_000_000L / minOf(FPS, maxFps ?: FPS)
            val now = SystemClock.elapsedRealtimeNanos()
            if (now < next) {
                val wait = next - now
                Thread.sleep(wait / 1_000_000, (wait % 1_000_000).toInt())
                continue
            }
            // After a stall, go on from now rather than catching up with a burst.
            next = maxOf(next + period, now - period)
            val (streamer, pattern) = target ?: continue
            if (clock() < pausedUntilS) continue
            val state = streamer.state.value
            if (state != SessionState.CONNECTING && state != SessionState.LIVE && state != SessionState.RECONNECTING) continue
            try {
                streamer.pushVideoFrame(PixelFormat.NV12, pattern.width, pattern.height, pattern.planes(n++), now / 1_000)
            } catch (e: FieldCastException.InvalidState) {
                // The session stopped between the state check and the push.
            } catch (e: FieldCastException.Closed) {
                // The live was closed meanwhile.
            } catch (e: FieldCastException) {
                if (reported.add(e.message ?: e.javaClass.name)) onError(e)
            }
        }
    }

    private companion object {
        const val FPS = 30
    }
}

/** An exception in one line for the journal. */
internal fun describe(e: Throwable): String = "${e.javaClass.simpleName}: ${e.message}"
