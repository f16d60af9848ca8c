package org.fieldcast.scenario

import java.io.File
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The shipped scenarios (`qa/scenarios/`, the test APK's assets) as the device player reads them,
 * on the desktop JVM: each parses and passes the desktop lab's rules against the sandbox's seed
 * catalog, splits into a timeline, and has its device test class. Run by
 * scripts/android-scenario-check.sh with `-Dfieldcast.scenarios=DIR`, `-Dfieldcast.products=IDS`
 * (the seed catalog's ids) and `-Dfieldcast.deviceTests=FILE` (ShippedScenarioTests.kt).
 */
class ShippedScenariosJvmTest {
    private val dir = File(System.getProperty("fieldcast.scenarios") ?: error("-Dfieldcast.scenarios is not set"))
    private val products = (System.getProperty("fieldcast.products") ?: error("-Dfieldcast.products is not set")).split(',')
    private val files = dir.listFiles { f -> f.name.endsWith(".json") }.orEmpty().sortedBy { it.name }

    /** Each shipped scenario parses, passes the rules and has a timeline that goes live. */
    @Test
    fun everyShippedScenarioParsesWithTheDesktopRules() {
        assertTrue("no scenarios in $dir", files.isNotEmpty())
        val lines = mutableListOf("")
        for (file in files) {
            val scenario = Scenario.parse(file.readText(), file.name, products)
            assertEquals(file.name, file.nameWithoutExtension, scenario.name)
            val timeline = Timeline(scenario)
            assertTrue(file.name, timeline.sellerCues.any { it is Cue.GoLive })
            lines += "  ${scenario.name}: ${fmt(scenario.durationS)} s, ${timeline.sellerCues.size} app cues, " +
                "${timeline.conductorCues.size} instrumentation cues, ${timeline.restarts().size} restart(s), ${timeline.outages.size} outage(s)"
        }
        println(lines.joinToString("\n"))
    }

    /** Each shipped scenario has its device test class, and no class plays another. */
    @Test
    fun everyShippedScenarioHasItsDeviceTest() {
        val source = File(System.getProperty("fieldcast.deviceTests") ?: error("-Dfieldcast.deviceTests is not set")).readText()
        val played = Regex("playShipped\\(\"([^\"]+)\"\\)").findAll(source).map { it.groupValues[1] }.toSortedSet()
        assertEquals(files.map { it.nameWithoutExtension }.toSortedSet(), played)
    }

    /** The flaky profile's drop-outs, given as an argument, fit the tunnel scenario. */
    @Test
    fun theFlakyProfilesOutagesFitTheTunnel() {
        // android/README.md gives these as fieldcastOutages for tunnel (the flaky profile: 8 s every 45 s from 20 s).
        val tunnel = Scenario.parse(File(dir, "tunnel.json").readText(), "tunnel.json", products)
        assertEquals("flaky", tunnel.network)
        val timeline = Timeline(tunnel, Timeline.parseOutages("20-28,65-73,110-118"))
        assertEquals(3, timeline.outages.size)
        assertEquals(6, timeline.conductorCues.size)
    }
}
