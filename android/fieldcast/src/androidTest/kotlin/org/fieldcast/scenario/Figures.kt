package org.fieldcast.scenario

import java.util.Locale
import org.json.JSONArray
import org.json.JSONObject

/**
 * A moment after which the app must be back on air: the end of an outage (when the device had a
 * network again) or a restart of the app. [atS] is its time in the scenario, [t] when it happened.
 */
data class BackMark(val label: String, val atS: Double, val t: Double)

/** The recording files read for frame gaps: how many, and the longest gap between video frames in any of them. */
data class RecordingScan(val files: Int, val maxGapMs: Long?, val unreadable: List<String> = emptyList())

/** One sale count of the run, from the phone and from the platform. */
data class SalesFigures(
    /** Sales `Commerce.sell` returned. */
    val taken: Int,
    /** Sales in the phone's store at the end (null: the app did not finish). */
    val inStore: Int?,
    /** Sales the platform holds for the live session, copies included. */
    val onPlatform: Int,
    /** Sales the phone had that the platform does not hold. */
    val lost: Int,
    /** Sales the platform holds more than once. */
    val doubled: Int,
    /** Sales the platform holds that the phone never had. */
    val unknown: Int,
    /** Sales `sell` returned that were not in the store at the end. */
    val notStored: Int,
) {
    /** Every sale on the platform exactly once, and nothing else. */
    val match: Boolean
        get() = inStore != null && lost == 0 && doubled == 0 && unknown == 0 && notStored == 0
}

/** What a device run measured, from the seller's journal, the platform and the recording. */
data class Figures(
    /** Seconds from the `go_live` cue to the first LIVE state. */
    val liveAfterS: Double?,
    /** For each outage's end and each restart while live: seconds until live and sending again (null: never). */
    val backAfterS: List<Pair<BackMark, Double?>>,
    /** The sales. */
    val sales: SalesFigures,
    /** The recording files and their longest frame gap (null: not read). */
    val recording: RecordingScan?,
    /** The app's highest resident memory (VmHWM), MB. */
    val peakRssMb: Double?,
    /** The app's mean CPU while live, percent of the device (all its cores). */
    val cpuPctOfDevice: Double?,
    /** The app's CPU seconds per second of live media. */
    val cpuSPerMediaS: Double?,
    /** Seconds the session was live, sampled. */
    val mediaS: Double,
    /** The device's cores, as the app saw them. */
    val cores: Int?,
    /** Times the session went RECONNECTING. */
    val reconnections: Int,
) {
    /** Computing the figures. */
    companion object {
        /**
         * The figures of a run from the seller's [journal], the moments the app had to be back
         * ([backMarks], only those while live count), the sale ids the platform holds
         * ([platformSales], copies included) and the [recording] scan.
         */
        fun compute(
            timeline: Timeline,
            journal: Journal,
            backMarks: List<BackMark>,
            platformSales: List<String>,
            recording: RecordingScan?,
        ): Figures {
            val events = journal.events
            val goLive = events.firstOrNull { it.event == Events.CUE && it.string("kind") == "go_live" }
            val firstLive = goLive?.let { cue -> events.firstOrNull { it.event == Events.STATE && it.t >= cue.t && it.string("to") == "LIVE" } }
            val liveAfter = if (goLive != null && firstLive != null) firstLive.t - goLive.t else null

            val stats = journal.named(Events.STATS)
            val back = backMarks.filter { timeline.sellerStateAt(it.atS).live != null }.map { mark ->
                val before = stats.lastOrNull { it.t < mark.t }
                val after = stats.firstOrNull { s ->
                    s.t >= mark.t && s.string("state") == "LIVE" &&
                        (before == null || s.pid != before.pid || (s.long("bytes_sent") ?: 0) > (before.long("bytes_sent") ?: 0))
                }
                mark to after?.let { it.t - mark.t }
            }

            val usage = journal.named(Events.USAGE)
            var cpuMs = 0.0
            var liveS = 0.0
            usage.zipWithNext().forEach { (a, b) ->
                if (a.pid == b.pid && a.string("state") == "LIVE" && b.string("state") == "LIVE") {
                    cpuMs += (b.double("cpu_ms") ?: 0.0) - (a.double("cpu_ms") ?: 0.0)
                    liveS += b.t - a.t
                }
            }
            val cores = usage.mapNotNull { it.long("cores")?.toInt() }.maxOrNull()
            val cpuPerMedia = if (liveS > 0) cpuMs / 1000.0 / liveS else null
            val cpuPct = if (cpuPerMedia != null && cores != null && cores > 0) cpuPerMedia / cores * 100.0 else null

            return Figures(
                liveAfterS = liveAfter,
                backAfterS = back,
                sales = sales(journal, platformSales),
                recording = recording,
                peakRssMb = usage.mapNotNull { it.double("hwm_mb") }.maxOrNull(),
                cpuPctOfDevice = cpuPct,
                cpuSPerMediaS = cpuPerMedia,
                mediaS = liveS,
                cores = cores,
                reconnections = journal.named(Events.STATE).count { it.string("to") == "RECONNECTING" },
            )
        }

        private fun sales(journal: Journal, platform: List<String>): SalesFigures {
            val taken = journal.named(Events.SALE).mapNotNull { it.string("id") }.toSet()
            val store = journal.named(Events.STORE_SALES).lastOrNull()?.let { e ->
                e.string("ids").orEmpty().split(',').filter { it.isNotEmpty() }.toSet()
            }
            val phone = taken + store.orEmpty()
            val onPlatform = platform.toSet()
            return SalesFigures(
                taken = taken.size,
                inStore = store?.size,
                onPlatform = platform.size,
                lost = (phone - onPlatform).size,
                doubled = platform.groupingBy { it }.eachCount().count { it.value > 1 },
                unknown = (onPlatform - phone).size,
                notStored = if (store == null) 0 else (taken - store).size,
            )
        }
    }
}

/** How a run did against one bound. */
enum class Verdict { PASS, FAIL, NOT_MEASURED }

/** One assertion of the scenario: what is checked, the bound, what the device measured, and the verdict. */
data class Check(val name: String, val target: String, val measured: String, val verdict: Verdict)

/** The checks of [assertions] against a device run's [figures]; bounds a device cannot measure say why. */
fun checks(scenario: Scenario, figures: Figures): List<Check> {
    val a = scenario.assertions
    val out = mutableListOf<Check>()
    fun check(name: String, target: String, measured: String, pass: Boolean) =
        Check(name, target, measured, if (pass) Verdict.PASS else Verdict.FAIL).also { out += it }

    a.liveWithinS?.let { bound ->
        val live = figures.liveAfterS
        check("time to live", "at most ${fmt(bound)} s", live?.let { "${secs(it)} s" } ?: "never live", live != null && live <= bound)
    }
    a.backWithinS?.let { bound ->
        val measured = if (figures.backAfterS.isEmpty()) {
            "no outage or restart while live"
        } else {
            figures.backAfterS.joinToString("; ") { (mark, s) -> "${mark.label} at ${secs(mark.atS)} s: ${s?.let { "${secs(it)} s" } ?: "never back"}" }
        }
        check(
            "back on air (the app's side: live and sending again)",
            "at most ${fmt(bound)} s after each",
            measured,
            figures.backAfterS.all { (_, s) -> s != null && s <= bound },
        )
    }
    a.latencyP95Ms?.let { bound ->
        out += Check(
            "p95 latency",
            "at most $bound ms",
            "not measured on a device: the viewer that measures it runs in the desktop lab (fieldcast qa)",
            Verdict.NOT_MEASURED,
        )
    }
    if (a.salesMatch) {
        val s = figures.sales
        val parts = buildList {
            add("${s.taken} taken")
            add(s.inStore?.let { "$it in the phone's store" } ?: "the phone's store not read (the app did not finish)")
            add("${s.onPlatform} on the platform")
            if (s.lost > 0) add("${s.lost} missing from the platform")
            if (s.doubled > 0) add("${s.doubled} held more than once")
            if (s.unknown > 0) add("${s.unknown} the phone never had")
            if (s.notStored > 0) add("${s.notStored} taken but not in the store")
        }
        check("sales", "every sale on the platform exactly once, nothing else", parts.joinToString(", "), s.match)
    }
    a.maxFrameGapMs?.let { bound ->
        val r = figures.recording
        when {
            !scenario.records() -> out += Check("longest frame gap of the recording", "at most $bound ms", "the scenario records no replay", Verdict.NOT_MEASURED)
            r == null || r.files == 0 -> check("longest frame gap of the recording", "at most $bound ms", "no recording file", false)
            else -> check(
                "longest frame gap of the recording",
                "at most $bound ms",
                "${r.maxGapMs?.let { "$it ms" } ?: "no video frames"} over ${r.files} file(s)" +
                    if (r.unreadable.isEmpty()) "" else ", unreadable: ${r.unreadable.joinToString()}",
                r.maxGapMs != null && r.maxGapMs <= bound && r.unreadable.isEmpty(),
            )
        }
    }
    a.peakRssMb?.let { bound ->
        val peak = figures.peakRssMb
        check("peak resident memory of the app", "at most ${fmt(bound)} MB", peak?.let { "${secs(it)} MB" } ?: "not sampled", peak != null && peak <= bound)
    }
    a.cpuPctOfDevice?.let { bound ->
        val pct = figures.cpuPctOfDevice
        check(
            "mean CPU of the app while live",
            "at most ${fmt(bound)} % of the device",
            if (pct == null) "not sampled while live" else "${secs(pct)} % of ${figures.cores} cores (${String.format(Locale.ROOT, "%.3f", figures.cpuSPerMediaS)} CPU s per media s)",
            pct != null && pct <= bound,
        )
    }
    return out
}

/**
 * A device run of a scenario: where it ran, the [figures], the [checks], and [failure] when the
 * run itself could not be played to its end.
 */
data class RunReport(
    val scenario: Scenario,
    val device: String,
    val failure: String?,
    val figures: Figures?,
    val checks: List<Check>,
    val marks: List<Pair<Double, String>>,
) {
    /** Whether the run completed and no measurable bound failed. */
    val pass: Boolean
        get() = failure == null && checks.none { it.verdict == Verdict.FAIL }

    /** One line: `PASS smoke on Pixel 7 (API 34): 5 of 5 measured assertions met; not measured here: p95 latency`. */
    fun summaryLine(): String {
        val measured = checks.filter { it.verdict != Verdict.NOT_MEASURED }
        val met = measured.count { it.verdict == Verdict.PASS }
        return buildString {
            append(if (pass) "PASS" else "FAIL")
            append(" ${scenario.name} on $device: $met of ${measured.size} measured assertions met")
            failure?.let { append("; the run did not complete: $it") }
            checks.filter { it.verdict == Verdict.FAIL }.forEach { append("; ${it.name}: ${it.measured} (target: ${it.target})") }
            val notMeasured = checks.filter { it.verdict == Verdict.NOT_MEASURED }
            if (notMeasured.isNotEmpty()) append("; not measured here: ${notMeasured.joinToString { it.name }}")
        }
    }

    /** The report as JSON, for the file the run leaves on the device. */
    fun toJson(): JSONObject = JSONObject().apply {
        put("scenario", scenario.name)
        put("description", scenario.description)
        put("device", device)
        put("device_profile", "${scenario.device} (not emulated: the device is its own profile)")
        put("network_profile", "${scenario.network} (not applied by the test: shape the emulator's network, see android/README.md)")
        put("pass", pass)
        put("failure", failure ?: JSONObject.NULL)
        put("summary", summaryLine())
        put("checks", JSONArray(checks.map { c -> JSONObject().put("name", c.name).put("target", c.target).put("measured", c.measured).put("verdict", c.verdict.name) }))
        put("marks", JSONArray(marks.map { (t, label) -> JSONObject().put("t_s", t).put("label", label) }))
        figures?.let { f ->
            put(
                "figures",
                JSONObject()
                    .put("live_after_s", f.liveAfterS ?: JSONObject.NULL)
                    .put("back_after_s", JSONArray(f.backAfterS.map { (m, s) -> JSONObject().put("label", m.label).put("at_s", m.atS).put("after_s", s ?: JSONObject.NULL) }))
                    .put("sales_taken", f.sales.taken)
                    .put("sales_in_store", f.sales.inStore ?: JSONObject.NULL)
                    .put("sales_on_platform", f.sales.onPlatform)
                    .put("sales_lost", f.sales.lost)
                    .put("sales_doubled", f.sales.doubled)
                    .put("sales_unknown", f.sales.unknown)
                    .put("recording_files", f.recording?.files ?: 0)
                    .put("max_frame_gap_ms", f.recording?.maxGapMs ?: JSONObject.NULL)
                    .put("peak_rss_mb", f.peakRssMb ?: JSONObject.NULL)
                    .put("cpu_pct_of_device", f.cpuPctOfDevice ?: JSONObject.NULL)
                    .put("cpu_s_per_media_s", f.cpuSPerMediaS ?: JSONObject.NULL)
                    .put("media_s", f.mediaS)
                    .put("cores", f.cores ?: JSONObject.NULL)
                    .put("reconnections", f.reconnections),
            )
        }
    }
}

/** The longest gap between consecutive video frames, ms, from their presentation times in µs (any order). */
fun maxFrameGapMs(timesUs: LongArray): Long? {
    if (timesUs.size < 2) return null
    val sorted = timesUs.sortedArray()
    var gap = 0L
    for (i in 1 until sorted.size) gap = maxOf(gap, sorted[i] - sorted[i - 1])
    return (gap + 500) / 1000
}

private fun secs(value: Double) = String.format(Locale.ROOT, "%.1f", value)
