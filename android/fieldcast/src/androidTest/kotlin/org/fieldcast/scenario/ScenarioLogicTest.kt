package org.fieldcast.scenario

import java.io.File
import java.nio.file.Files
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * The device player's logic without a device: parsing and checking scenarios with the desktop
 * lab's rules, the timeline split between the app and the instrumentation, what a restarted app
 * takes up, the journal, the figures and the verdicts. Plain JUnit 4 on `org.json`, so it runs on
 * the JVM (scripts/android-scenario-check.sh) and on a device alike.
 */
class ScenarioLogicTest {
    private val products = listOf("orange-box", "honey-jar", "egg-tray")

    private fun scenario(timeline: String, assertions: String = "") = Scenario.parse(
        """{"name":"t","device":"desktop","network":"good-4g","duration_s":60,"timeline":[$timeline]$assertions}""",
        "test",
        products,
    )

    private fun refused(kind: ScenarioException.Kind, json: () -> Unit): String {
        try {
            json()
        } catch (e: ScenarioException) {
            assertEquals(e.message, kind, e.kind)
            return e.message!!
        }
        fail("not refused")
        throw AssertionError()
    }

    /** Steps left short take the desktop lab's defaults. */
    @Test
    fun actionsTakeTheirDefaults() {
        val s = scenario("""{"at_s":1,"action":"go_live"},{"at_s":2,"action":"sell","product":"egg-tray"},{"at_s":3,"action":"kill_app"}""")
        assertEquals(Action.GoLive("480p", abr = true, record = false), s.timeline[0].action)
        assertEquals(Action.Sell("egg-tray", 1, 1, 0.0), s.timeline[1].action)
        assertEquals(Action.KillApp(3.0), s.timeline[2].action)
        assertTrue(s.assertions.salesMatch)
        assertNull(s.assertions.latencyP95Ms)
    }

    /** Unplayable timelines are refused naming the step, as the desktop lab words it. */
    @Test
    fun brokenTimelinesAreRefusedWithTheStepNamed() {
        fun invalid(timeline: String, needle: String) {
            val m = refused(ScenarioException.Kind.INVALID) { scenario(timeline) }
            assertTrue(m, m.contains(needle))
        }
        invalid("""{"at_s":1,"action":"pin","product":"egg-tray"}""", "step 1")
        invalid("""{"at_s":5,"action":"go_live"},{"at_s":2,"action":"end"}""", "time order")
        invalid("""{"at_s":1,"action":"go_live"},{"at_s":2,"action":"sell","product":"goat"}""", "unknown product `goat`")
        invalid("""{"at_s":1,"action":"go_live","profile":"4k"}""", "not one of")
        invalid("""{"at_s":1,"action":"go_live"},{"at_s":2,"action":"network_up"}""", "not down")
        invalid("""{"at_s":1,"action":"go_live"},{"at_s":50,"action":"sell","product":"egg-tray","count":3,"every_s":10}""", "after the end")
        invalid("""{"at_s":1,"action":"go_live"},{"at_s":2,"action":"end"},{"at_s":3,"action":"upload_replay"}""", "recorded live")
        invalid("""{"at_s":70,"action":"go_live"}""", "within 0..=60")
        invalid("", "never goes live")
        invalid("""{"at_s":1,"action":"go_live"},{"at_s":2.5,"action":"low_battery","max_fps":0}""", "step 2 (at 2.5 s, low battery (0 fps))")
        invalid(
            """{"at_s":1,"action":"go_live"},{"at_s":3,"action":"sell","product":"egg-tray","count":3,"every_s":3},""" +
                """{"at_s":5,"action":"kill_app","restart_after_s":4}""",
            "not running then",
        )
    }

    /** Products are checked against the platform's catalog when one is given. */
    @Test
    fun productsAreCheckedOnlyAgainstACatalog() {
        val json = """{"name":"t","device":"d","network":"n","duration_s":9,"timeline":[{"at_s":1,"action":"go_live"},{"at_s":2,"action":"pin","product":"goat"}]}"""
        assertEquals(Action.Pin("goat"), Scenario.parse(json, "x").timeline[1].action)
        refused(ScenarioException.Kind.INVALID) { Scenario.parse(json, "x", products) }
    }

    /** Unknown actions and fields and wrong types are parse errors; a step's extra fields are not. */
    @Test
    fun unknownActionsFieldsAndTypesAreParseErrors() {
        refused(ScenarioException.Kind.PARSE) { scenario("""{"at_s":1,"action":"dance"}""") }
        refused(ScenarioException.Kind.PARSE) {
            Scenario.parse("""{"name":"t","device":"d","network":"n","duration_s":1,"timeline":[],"colour":1}""", "x")
        }
        refused(ScenarioException.Kind.PARSE) { scenario("""{"at_s":1,"action":"go_live"}""", ""","assertions":{"latency_ms":1}""") }
        refused(ScenarioException.Kind.PARSE) { scenario("""{"at_s":1,"action":"go_live"},{"at_s":2,"action":"sell","product":"egg-tray","quantity":1.5}""") }
        refused(ScenarioException.Kind.PARSE) { scenario("""{"at_s":1,"action":"go_live"},{"at_s":2,"action":"sell","product":"egg-tray","count":-1}""") }
        refused(ScenarioException.Kind.PARSE) { scenario("""{"at_s":"1","action":"go_live"}""") }
        refused(ScenarioException.Kind.PARSE) { Scenario.parse("[]", "x") }
        refused(ScenarioException.Kind.PARSE) { Scenario.parse("{", "x") }
        // A step's unknown fields are ignored, as serde does for the desktop lab's tagged steps.
        assertEquals(Action.End, scenario("""{"at_s":1,"action":"go_live"},{"at_s":2,"action":"end","why":"rain"}""").timeline[1].action)
        // Null bounds are absent bounds.
        assertNull(scenario("""{"at_s":1,"action":"go_live"}""", ""","assertions":{"peak_rss_mb":null}""").assertions.peakRssMb)
    }

    /** Outages pair `network_down` with `network_up`; one open at the end closes with the run. */
    @Test
    fun scriptedOutagesPairDownWithUp() {
        val s = scenario(
            """{"at_s":1,"action":"go_live"},{"at_s":10,"action":"network_down"},{"at_s":14,"action":"network_up"},{"at_s":50,"action":"network_down"}""",
        )
        assertEquals(listOf(Span(10.0, 14.0), Span(50.0, 60.0)), s.scriptedOutages())
        val t = Timeline(s)
        // The outage still open at the end is closed at the end of the run.
        assertEquals(
            listOf("10 network down", "14 network up", "50 network down", "60 network up"),
            t.conductorCues.map { "${fmt(it.atS)} ${it.label()}" },
        )
    }

    /** Sales get a cue each; network and kill cues go to the instrumentation. */
    @Test
    fun theTimelineSplitsBetweenTheAppAndTheInstrumentation() {
        val t = Timeline(
            scenario(
                """{"at_s":1,"action":"go_live","profile":"360p","record":true},{"at_s":6,"action":"pin","product":"orange-box"},
                   {"at_s":8,"action":"sell","product":"orange-box","quantity":2,"count":3,"every_s":1.5},
                   {"at_s":9,"action":"network_down"},{"at_s":12,"action":"network_up"},
                   {"at_s":20,"action":"background","secs":3},{"at_s":30,"action":"low_battery","max_fps":10},
                   {"at_s":35.5,"action":"kill_app","restart_after_s":2},{"at_s":40,"action":"charged"},
                   {"at_s":54,"action":"end"},{"at_s":55,"action":"upload_replay"}""",
            ),
            extraOutages = listOf(Span(44.0, 46.0)),
        )
        assertEquals(
            listOf(
                "1 go live 360p, ABR, recording", "6 pin orange-box", "8 sell 2 orange-box (1 of 3)", "9.5 sell 2 orange-box (2 of 3)",
                "11 sell 2 orange-box (3 of 3)", "20 background until 23 s", "30 low battery (10 fps)", "40 charged", "54 end", "55 upload replay",
            ),
            t.sellerCues.map { "${fmt(it.atS)} ${it.label()}" },
        )
        assertEquals(
            listOf("9 network down", "12 network up", "35.5 app killed, restarted at 37.5 s", "44 network down", "46 network up"),
            t.conductorCues.map { "${fmt(it.atS)} ${it.label()}" },
        )
        assertEquals(listOf(Span(9.0, 12.0), Span(44.0, 46.0)), t.outages)
        assertEquals(listOf(Span(35.5, 37.5)), t.restarts())
    }

    /** A restarted app goes live again with the cap in force and plays only what is left. */
    @Test
    fun aRestartedAppTakesUpTheLiveAndTheCap() {
        val t = Timeline(
            scenario(
                """{"at_s":1,"action":"go_live","profile":"360p"},{"at_s":20,"action":"background","secs":10},
                   {"at_s":22,"action":"low_battery","max_fps":10},{"at_s":25,"action":"kill_app"},
                   {"at_s":40,"action":"charged"},{"at_s":50,"action":"end"}""",
            ),
        )
        val atRestart = t.sellerStateAt(28.0)
        assertEquals(Action.GoLive("360p"), atRestart.live)
        assertEquals(10, atRestart.maxFps)
        assertEquals(30.0, atRestart.backgroundUntilS!!, 0.0)
        assertFalse(atRestart.ended)
        assertEquals(listOf("charged", "end"), t.sellerCuesFrom(28.0).map { it.label() })
        val later = t.sellerStateAt(45.0)
        assertNull(later.maxFps)
        assertNull(later.backgroundUntilS)
        val after = t.sellerStateAt(51.0)
        assertNull(after.live)
        assertTrue(after.ended)
        assertNull(t.sellerStateAt(1.0).live) // a cue at the moment itself has not happened yet
    }

    /** Outages given as an argument must lie in the run and overlap nothing. */
    @Test
    fun extraOutagesMustFitTheRun() {
        val s = scenario("""{"at_s":1,"action":"go_live"},{"at_s":10,"action":"network_down"},{"at_s":14,"action":"network_up"}""")
        assertEquals(listOf(Span(20.0, 28.0), Span(65.5, 73.0)), Timeline.parseOutages(" 20-28, 65.5-73 "))
        assertEquals(emptyList<Span>(), Timeline.parseOutages(""))
        for (bad in listOf(listOf(Span(12.0, 16.0)), listOf(Span(50.0, 70.0)), listOf(Span(20.0, 30.0), Span(25.0, 35.0)), listOf(Span(5.0, 5.0)))) {
            try {
                Timeline(s, bad)
                fail("accepted $bad")
            } catch (e: IllegalArgumentException) {
                // refused, as it should be
            }
        }
        try {
            Timeline.parseOutages("20..28")
            fail("accepted 20..28")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!.contains("FROM-TO"))
        }
    }

    /** The journal reads back line by line; a line torn by a kill is skipped. */
    @Test
    fun theJournalReadsBackAndSkipsATornLine() {
        val file = File(Files.createTempDirectory("journal").toFile(), "journal.jsonl")
        var clock = 1.25
        JournalWriter(file, 4242) { clock }.use { j ->
            j.write(Events.STARTED, "resume_at" to 0.0)
            clock = 2.5
            j.write(Events.SALE, "id" to "s1", "product" to "egg-tray", "quantity" to 2L, "buyer" to null, "fps" to Double.NaN)
        }
        file.appendText("{\"t\":3,\"pid\":42") // what a SIGKILL in the middle of a write leaves
        val journal = Journal.read(file)
        assertEquals(1, journal.unreadable)
        assertEquals(listOf(Events.STARTED, Events.SALE), journal.events.map { it.event })
        val sale = journal.named(Events.SALE).single()
        assertEquals(2.5, sale.t, 0.0)
        assertEquals(4242, sale.pid)
        assertEquals("s1", sale.string("id"))
        assertEquals(2L, sale.long("quantity"))
        assertNull(sale.string("buyer"))
        assertNull(sale.double("fps"))
        assertEquals(0, Journal.read(File(file.parentFile, "absent")).events.size)
        file.parentFile.deleteRecursively()
    }

    /** A journal of two processes: live at 4 s, an outage ending at 20 s, a kill, a restart at 30 s. */
    private fun journal(): Journal {
        val lines = mutableListOf<String>()
        fun line(t: Double, pid: Int, event: String, fields: String = "") = lines.add("""{"t":$t,"pid":$pid,"event":"$event"$fields}""")
        line(0.2, 100, Events.STARTED, ""","resume_at":0""")
        line(1.0, 100, Events.CUE, ""","kind":"go_live","label":"go live 360p","step":1""")
        line(4.0, 100, Events.STATE, ""","from":"CONNECTING","to":"LIVE"""")
        for (s in 5..24) {
            val state = if (s in 17..21) "RECONNECTING" else "LIVE"
            val bytes = if (s < 17) s * 1000 else if (s < 22) 16_000 else s * 1000
            line(s.toDouble(), 100, Events.STATS, ""","state":"$state","bytes_sent":$bytes""")
            line(s + 0.5, 100, Events.USAGE, ""","state":"$state","cpu_ms":${s * 400},"hwm_mb":${100 + s},"cores":4""")
        }
        line(17.0, 100, Events.STATE, ""","from":"LIVE","to":"RECONNECTING"""")
        line(8.0, 100, Events.SALE, ""","id":"a","product":"egg-tray","quantity":1""")
        line(9.0, 100, Events.SALE, ""","id":"b","product":"egg-tray","quantity":1""")
        // killed at 25 s; started again at 30 s
        line(30.3, 200, Events.STARTED, ""","resume_at":30""")
        line(31.0, 200, Events.STATS, ""","state":"CONNECTING","bytes_sent":0""")
        line(32.0, 200, Events.STATS, ""","state":"LIVE","bytes_sent":900""")
        line(33.0, 200, Events.USAGE, ""","state":"LIVE","cpu_ms":100,"hwm_mb":90,"cores":4""")
        line(34.0, 200, Events.USAGE, ""","state":"LIVE","cpu_ms":500,"hwm_mb":95,"cores":4""")
        line(40.0, 200, Events.SALE, ""","id":"c","product":"honey-jar","quantity":1""")
        line(59.0, 200, Events.STORE_SALES, ""","ids":"a,b,c,d"""")
        return Journal.parse(lines.joinToString("\n"))
    }

    private fun timelineOfJournal() = Timeline(
        scenario(
            """{"at_s":1,"action":"go_live","profile":"360p","record":true},{"at_s":15,"action":"network_down"},{"at_s":19,"action":"network_up"},
               {"at_s":25,"action":"kill_app","restart_after_s":5},{"at_s":55,"action":"end"}""",
            ""","assertions":{"live_within_s":5,"back_within_s":3,"latency_p95_ms":3000,"max_frame_gap_ms":1000,"peak_rss_mb":120,"cpu_pct_of_device":15}""",
        ),
    )

    /** The figures of a run with an outage and a restart. */
    @Test
    fun figuresComeFromTheJournalThePlatformAndTheRecording() {
        val t = timelineOfJournal()
        val marks = listOf(BackMark("network back", 19.0, 20.0), BackMark("restart", 30.0, 30.0), BackMark("network back", 58.0, 58.5))
        // "d" was stored just before the kill and never acknowledged; "b" reached the platform twice; "x" is not the phone's.
        val f = Figures.compute(t, journal(), marks, listOf("a", "b", "b", "c", "d", "x"), RecordingScan(3, 640))
        assertEquals(3.0, f.liveAfterS!!, 1e-9)
        // The outage's end counts from the network being back (20 s): live and sending again at 22 s.
        assertEquals(listOf(2.0, 2.0), f.backAfterS.map { it.second })
        assertEquals(listOf("network back", "restart"), f.backAfterS.map { it.first.label }) // 58 s is after the end: not counted
        assertEquals(SalesFigures(taken = 3, inStore = 4, onPlatform = 6, lost = 0, doubled = 1, unknown = 1, notStored = 0), f.sales)
        assertFalse(f.sales.match)
        assertEquals(124.0, f.peakRssMb!!, 1e-9)
        // Live between samples: 5.5..16.5 and 22.5..24.5 in the first process (400 ms CPU a second), 33..34 in the second.
        assertEquals(14.0, f.mediaS, 1e-9)
        assertEquals(0.4, f.cpuSPerMediaS!!, 1e-9)
        assertEquals(10.0, f.cpuPctOfDevice!!, 1e-9)
        assertEquals(4, f.cores)
        assertEquals(1, f.reconnections)
    }

    /** Verdicts per bound, latency not measured, and the summary line. */
    @Test
    fun checksSayWhatTheDeviceMeasuredAndWhatItCannot() {
        val t = timelineOfJournal()
        val f = Figures.compute(t, journal(), listOf(BackMark("restart", 30.0, 30.0)), listOf("a", "b", "c", "d"), RecordingScan(2, 1500))
        val checks = checks(t.scenario, f).associateBy { it.name.substringBefore(" (") }
        assertEquals(Verdict.PASS, checks.getValue("time to live").verdict)
        assertEquals(Verdict.PASS, checks.getValue("back on air").verdict)
        assertEquals(Verdict.NOT_MEASURED, checks.getValue("p95 latency").verdict)
        assertEquals(Verdict.PASS, checks.getValue("sales").verdict)
        assertEquals(Verdict.FAIL, checks.getValue("longest frame gap of the recording").verdict)
        assertEquals(Verdict.FAIL, checks.getValue("peak resident memory of the app").verdict)
        assertEquals(Verdict.PASS, checks.getValue("mean CPU of the app while live").verdict)
        val report = RunReport(t.scenario, "a phone", null, f, checks.values.toList(), emptyList())
        assertFalse(report.pass)
        val line = report.summaryLine()
        assertTrue(line, line.startsWith("FAIL t on a phone: 4 of 6 measured assertions met; "))
        assertTrue(line, line.contains("longest frame gap of the recording: 1500 ms over 2 file(s) (target: at most 1000 ms)"))
        assertTrue(line, line.endsWith("not measured here: p95 latency"))
        assertEquals("FAIL", report.toJson().getJSONArray("checks").getJSONObject(4).getString("verdict"))

        val never = Figures.compute(t, Journal.parse(""), emptyList(), emptyList(), null)
        val none = checks(t.scenario, never).associateBy { it.name.substringBefore(" (") }
        assertEquals("never live", none.getValue("time to live").measured)
        assertEquals(Verdict.FAIL, none.getValue("sales").verdict) // the store was never read
        assertEquals("no recording file", none.getValue("longest frame gap of the recording").measured)
        assertEquals(Verdict.FAIL, none.getValue("mean CPU of the app while live").verdict)
    }

    /** The longest frame gap from presentation times in any order. */
    @Test
    fun frameGapsComeFromPresentationTimes() {
        assertNull(maxFrameGapMs(longArrayOf(5)))
        assertEquals(33L, maxFrameGapMs(longArrayOf(0, 33_333, 66_667, 100_000)))
        // B-frames come out of order; a 1.2 s hole (the app in the background) is the gap.
        assertEquals(1200L, maxFrameGapMs(longArrayOf(0, 66_000, 33_000, 1_266_000, 1_300_000)))
    }

    /** Instrumentation arguments: defaults, the ingest rerouted to the API's host, bad values. */
    @Test
    fun argumentsHaveDefaultsAndReachTheIngestWhereTheApiIs() {
        val defaults = RunArguments.from { null }
        assertEquals("http://10.0.2.2:8080", defaults.api)
        assertEquals("sandbox-token", defaults.token)
        assertEquals("svc", defaults.networkSwitch)
        assertEquals("rtmp://10.0.2.2:41935/live/abc123", defaults.publishUrlOnDevice("rtmp://127.0.0.1:41935/live/abc123"))
        val given = RunArguments.from(
            mapOf(
                RunArguments.API to "http://192.168.1.20:8080/",
                RunArguments.INGEST to "192.168.1.20:1935",
                RunArguments.NETWORK to "airplane",
                RunArguments.OUTAGES to "20-28,65-73",
            )::get,
        )
        assertEquals("http://192.168.1.20:8080", given.api)
        assertEquals("rtmp://192.168.1.20:1935/live/abc123", given.publishUrlOnDevice("rtmp://127.0.0.1:41935/live/abc123"))
        assertEquals(listOf(Span(20.0, 28.0), Span(65.0, 73.0)), given.extraOutages)
        for (bad in listOf(RunArguments.API to "10.0.2.2:8080", RunArguments.INGEST to "rtmp://x:1", RunArguments.NETWORK to "wifi")) {
            try {
                RunArguments.from(mapOf(bad)::get)
                fail("accepted $bad")
            } catch (e: IllegalArgumentException) {
                assertTrue(e.message!!, e.message!!.contains(bad.first))
            }
        }
    }

    /** The test pattern is NV12 at the profile's size and repeats. */
    @Test
    fun theTestPatternHasTheProfilesSizeInTwoPlanes() {
        val (w, h) = TestPattern.sizeOf("270p")
        val pattern = TestPattern(w, h)
        val planes = pattern.planes(12)
        assertEquals(2, planes.size)
        assertEquals(480 * 270, planes[0].buffer.remaining())
        assertEquals(480 * 270 / 2, planes[1].buffer.remaining())
        assertEquals(2, planes[1].pixelStride)
        assertTrue(planes.all { it.buffer.isDirect })
        assertEquals(pattern.planes(2)[0].buffer, planes[0].buffer) // the pictures repeat
        assertFalse(pattern.planes(3)[0].buffer == planes[0].buffer)
        assertEquals(854 to 480, TestPattern.sizeOf("480p"))
    }
}
