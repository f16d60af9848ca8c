package org.fieldcast.scenario

import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import org.junit.Test
import org.junit.runner.RunWith

// The shipped scenarios of qa/scenarios/, one test class each, played on the device in real time
// (see android/README.md, "Scenario tests on a device"). Only these classes touch androidx.test.

/** Plays the shipped scenario [name] with this instrumentation and its arguments. */
private fun playShipped(name: String) =
    ScenarioTestRun.play(InstrumentationRegistry.getInstrumentation(), InstrumentationRegistry.getArguments(), name)

/** `smoke`: one minute touching every kind of action, the app killed and restarted included. */
@RunWith(AndroidJUnit4::class)
class SmokeScenarioTest {
    /** Plays `qa/scenarios/smoke.json`. */
    @Test
    fun smoke() = playShipped("smoke")
}

/** `market-day`: three products pinned in turn, twelve sales, the replay recorded and uploaded. */
@RunWith(AndroidJUnit4::class)
class MarketDayScenarioTest {
    /** Plays `qa/scenarios/market-day.json`. */
    @Test
    fun marketDay() = playShipped("market-day")
}

/** `hilltop`: a live at the edge of coverage with a low battery late in the run. */
@RunWith(AndroidJUnit4::class)
class HilltopScenarioTest {
    /** Plays `qa/scenarios/hilltop.json`. */
    @Test
    fun hilltop() = playShipped("hilltop")
}

/** `tunnel`: sales through drop-outs (those of the flaky profile with `fieldcastOutages`), the app in the background once. */
@RunWith(AndroidJUnit4::class)
class TunnelScenarioTest {
    /** Plays `qa/scenarios/tunnel.json`. */
    @Test
    fun tunnel() = playShipped("tunnel")
}

/** `power-cut`: the app killed with SIGKILL in the middle of a run of sales and started again. */
@RunWith(AndroidJUnit4::class)
class PowerCutScenarioTest {
    /** Plays `qa/scenarios/power-cut.json`. */
    @Test
    fun powerCut() = playShipped("power-cut")
}
