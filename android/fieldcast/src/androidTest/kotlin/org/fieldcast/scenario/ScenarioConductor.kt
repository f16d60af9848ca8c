package org.fieldcast.scenario

import android.app.ActivityManager
import android.app.Instrumentation
import android.content.Context
import android.os.Build
import android.os.Bundle
import android.os.Process
import android.os.SystemClock
import android.util.Log
import java.io.File
import java.io.IOException

/**
 * Plays a scenario on this device from the instrumentation: prepares the platform (restock, a live
 * session), starts the app under test ([SellerService], in its own process), plays the cues an app
 * cannot play on itself (the network switched off and on with [NetworkSwitch]; the app killed with
 * SIGKILL by its process id and started again), waits for the app to finish, and measures the run:
 * the app's journal, the sales the platform holds, the recording's frame gaps. The device is its
 * own device profile; the network profile is not applied here (see android/README.md).
 */
class ScenarioConductor(private val instrumentation: Instrumentation, private val args: RunArguments) {
    private val context: Context = instrumentation.targetContext
    private val platform = PlatformClient(args.api, args.token)
    private val network = NetworkSwitch(instrumentation, args.networkSwitch)
    private val seller = SellerProcess(context)
    private val marks = mutableListOf<Pair<Double, String>>()
    private var epochMs = 0L

    /** Plays the scenario [json] ([source] names it in errors) and returns the run's report. */
    fun play(json: String, source: String): RunReport {
        val scenario = try {
            Scenario.parse(json, source)
        } catch (e: ScenarioException) {
            throw IllegalArgumentException(e.message, e)
        }
        if (!platform.healthy(HEALTH_TIMEOUT_MS)) {
            val report = RunReport(
                scenario, device(),
                "no platform sandbox answers at ${args.api}: start it on the host (`fieldcast sandbox --port 8080`) and pass " +
                    "-e ${RunArguments.API} with the address the device reaches it at (emulator: http://10.0.2.2:8080)",
                null, emptyList(), marks,
            )
            save(report)
            return report
        }
        var failure: String? = null
        var figures: Figures? = null
        var checks: List<Check> = emptyList()
        try {
            val checked = try {
                Scenario.parse(json, source, platform.productIds())
            } catch (e: ScenarioException) {
                throw RunFailure(e.message ?: "the scenario cannot be played")
            }
            val timeline = try {
                Timeline(checked, args.extraOutages)
            } catch (e: IllegalArgumentException) {
                throw RunFailure("${RunArguments.OUTAGES}: ${e.message}")
            }
            val run = prepare(checked)
            val backMarks = mutableListOf<BackMark>()
            try {
                failure = conduct(timeline, run, json, backMarks)
            } finally {
                if (network.isDown && !network.up()) failure = failure ?: "the network did not come back after the run"
                seller.kill()
                runCatching { platform.endLiveSession(run.sessionId) }
            }
            val journal = Journal.read(File(run.dir, SellerRun.JOURNAL_FILE))
            journal.events.filter { it.event in NOTEWORTHY }.forEach { e ->
                marks += e.t to "${e.event}: ${listOfNotNull(e.string("label"), e.string("what"), e.string("message")).joinToString(": ")}"
            }
            val failed = journal.named(Events.FAILED)
            if (failure == null && failed.isNotEmpty()) {
                failure = "the app failed to " + failed.joinToString("; ") { "${it.string("what")} at ${fmt(Math.round(it.t * 10) / 10.0)} s (${it.string("message")})" }
            }
            val platformSales = platform.saleIds(run.sessionId)
            val recording = if (checked.records()) RecordingGaps.scan(File(run.dir, SellerRun.RECORD_DIR)) else null
            figures = Figures.compute(timeline, journal, backMarks, platformSales, recording)
            checks = checks(checked, figures)
        } catch (e: RunFailure) {
            failure = e.message
        } catch (e: IOException) {
            failure = "the platform: ${e.message}"
        }
        val report = RunReport(scenario, device(), failure, figures, checks, marks.sortedBy { it.first })
        save(report)
        return report
    }

    /** What [prepare] made for a run. */
    private class Run(val sessionId: String, val publishUrl: String, val dir: File)

    private fun prepare(scenario: Scenario): Run {
        platform.restock(STOCK)
        val live = platform.createLiveSession("${scenario.name} on ${Build.MODEL}")
        // A seller left over from an earlier run would write into this run's files and carry its memory peak over.
        seller.kill()
        val dir = File(context.filesDir, "scenario-runs/${scenario.name}")
        dir.deleteRecursively()
        if (!dir.mkdirs()) throw RunFailure("cannot create $dir")
        return Run(live.id, args.publishUrlOnDevice(live.publishUrl), dir)
    }

    /** Plays the run in real time; returns why it could not be played to its end, or null. */
    private fun conduct(timeline: Timeline, run: Run, json: String, backMarks: MutableList<BackMark>): String? {
        val scenario = timeline.scenario
        val journalFile = File(run.dir, SellerRun.JOURNAL_FILE)
        epochMs = SystemClock.elapsedRealtime()
        fun plan(resumeAtS: Double) = SellerPlan(
            scenarioJson = json, epochElapsedMs = epochMs, resumeAtS = resumeAtS,
            api = args.api, token = args.token, sessionId = run.sessionId, publishUrl = run.publishUrl, dir = run.dir,
        )
        seller.start(plan(0.0))
        mark("the app started")
        for (cue in timeline.conductorCues) {
            sleepUntil(cue.atS)
            when (cue) {
                is Cue.NetworkDown -> {
                    mark("network down")
                    network.down()?.let { return it }
                    if (platform.healthy(REACH_TIMEOUT_MS)) {
                        return "the platform at ${args.api} is still reachable with the device's network off: it is reached " +
                            "over adb reverse or USB, so an outage cuts nothing; reach it over the network (emulator: 10.0.2.2)"
                    }
                }
                is Cue.NetworkUp -> {
                    mark("network switched on")
                    if (!network.up()) return "the device had no network 60 s after it was switched on again"
                    backMarks += BackMark("network back", cue.atS, mark("network back"))
                }
                is Cue.Kill -> {
                    val pid = seller.pid() ?: return "the app's process was not running when it was to be killed at ${fmt(cue.atS)} s"
                    Process.killProcess(pid)
                    mark("the app killed (SIGKILL to pid $pid)")
                    if (!seller.awaitGone(pid, KILL_WAIT_MS)) return "the app's process $pid was still there ${KILL_WAIT_MS / 1000} s after SIGKILL"
                    sleepUntil(cue.restartAtS)
                    seller.start(plan(cue.restartAtS))
                    backMarks += BackMark("restart", cue.restartAtS, mark("the app started again"))
                }
            }
        }
        val deadline = epochMs + ((scenario.durationS + DRAIN_S) * 1000).toLong()
        var goneSince: Long? = null
        while (SystemClock.elapsedRealtime() < deadline) {
            val events = Journal.read(journalFile).events
            events.firstOrNull { it.event == Events.ABORTED }?.let { return "the app stopped: ${it.string("message")}" }
            if (events.any { it.event == Events.DONE }) return null
            if (seller.pid() == null) {
                val since = goneSince ?: SystemClock.elapsedRealtime().also { goneSince = it }
                if (SystemClock.elapsedRealtime() - since > GONE_GRACE_MS) return "the app's process ended without finishing its part (a crash? see logcat)"
            } else {
                goneSince = null
            }
            Thread.sleep(POLL_MS)
        }
        return "the app had not finished ${DRAIN_S.toInt()} s after the end of the run"
    }

    private fun mark(label: String): Double {
        val t = (SystemClock.elapsedRealtime() - epochMs) / 1000.0
        marks += t to label
        return t
    }

    private fun sleepUntil(atS: Double) {
        val ms = epochMs + (atS * 1000).toLong() - SystemClock.elapsedRealtime()
        if (ms > 0) Thread.sleep(ms)
    }

    /** Writes the report to `files/scenario-reports/NAME.json` (external storage when there is one) and logcat. */
    private fun save(report: RunReport) {
        val dir = context.getExternalFilesDir("scenario-reports") ?: File(context.filesDir, "scenario-reports")
        dir.mkdirs()
        runCatching { File(dir, "${report.scenario.name}.json").writeText(report.toJson().toString(2) + "\n") }
            .onFailure { Log.w(TAG, "cannot write the report to $dir", it) }
        Log.i(TAG, report.summaryLine())
        report.checks.forEach { Log.i(TAG, "  ${it.verdict} ${it.name}: ${it.measured} (target: ${it.target})") }
    }

    private fun device() = "${Build.MANUFACTURER} ${Build.MODEL} (Android ${Build.VERSION.RELEASE}, API ${Build.VERSION.SDK_INT})"

    /** A reason the run cannot go on. */
    private class RunFailure(message: String) : Exception(message)

    /** Shared figures of the conductor. */
    private companion object {
        const val TAG = "FieldCastScenario"
        const val STOCK = 100_000L
        const val HEALTH_TIMEOUT_MS = 5_000
        const val REACH_TIMEOUT_MS = 2_000
        const val KILL_WAIT_MS = 5_000L
        const val GONE_GRACE_MS = 5_000L
        const val POLL_MS = 500L

        /** Time after the end of the run for the outbox to drain and the app to finish, seconds. */
        const val DRAIN_S = 180.0

        val NOTEWORTHY = setOf(Events.CUE, Events.FAILED, Events.NOTE, Events.SESSION_ERROR, Events.ABORTED, Events.REPLAY)
    }
}

/**
 * The app's process in a run (`<package>:seller`): started with an intent as the farmer opens the
 * app, found by name among this app's processes, killed by its process id.
 */
class SellerProcess(private val context: Context) {
    private val activities: ActivityManager = context.getSystemService(ActivityManager::class.java)
    private val name = "${context.packageName}:seller"

    /** Starts the app with [plan]. */
    fun start(plan: SellerPlan) {
        context.startService(plan.intent(context)) ?: throw IllegalStateException("the test APK has no SellerService")
    }

    /** The process id of the app's process, or null when it is not running. */
    fun pid(): Int? = activities.runningAppProcesses?.firstOrNull { it.processName == name }?.pid

    /** Waits until process [pid] is gone; false when it is still there after [timeoutMs]. */
    fun awaitGone(pid: Int, timeoutMs: Long): Boolean {
        val deadline = SystemClock.elapsedRealtime() + timeoutMs
        while (SystemClock.elapsedRealtime() < deadline) {
            if (pid() != pid) return true
            Thread.sleep(50)
        }
        return pid() != pid
    }

    /** Kills the app's process if it runs (SIGKILL) and waits for it to go. */
    fun kill() {
        val pid = pid() ?: return
        Process.killProcess(pid)
        awaitGone(pid, 5_000)
    }
}

/**
 * The entry point of the device tests: reads a shipped scenario from the test APK's assets (the
 * files of `qa/scenarios/`), plays it with the instrumentation's arguments, and fails with the
 * run's summary when a bound the device measures failed or the run did not complete.
 */
object ScenarioTestRun {
    /** Plays `assets/NAME.json` on this device; throws [AssertionError] when the run failed. */
    fun play(instrumentation: Instrumentation, arguments: Bundle, name: String) {
        val json = instrumentation.context.assets.open("$name.json").use { it.readBytes().decodeToString() }
        val report = ScenarioConductor(instrumentation, RunArguments.from(arguments::getString)).play(json, "$name.json")
        if (!report.pass) throw AssertionError(report.summaryLine())
    }
}
