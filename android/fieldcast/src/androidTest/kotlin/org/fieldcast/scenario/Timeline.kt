package org.fieldcast.scenario

/**
 * One thing to do at one moment of a device run, [atS] seconds from its start; [step] is the
 * scenario step it comes from (1-based, null for an outage given as an instrumentation argument).
 *
 * The seller's process (the app under test) plays [Seller] cues; the instrumentation plays
 * [Conductor] cues, which a process cannot do to itself: switching the device's network and
 * killing the app.
 */
sealed class Cue {
    abstract val atS: Double
    abstract val step: Int?

    /** A label for the journal and the report. */
    abstract fun label(): String

    /** A cue the app under test plays itself. */
    sealed class Seller : Cue()

    /** A cue the instrumentation plays on the app and the device. */
    sealed class Conductor : Cue()

    /** Go live with [action]'s profile, adaptive bitrate and recording. */
    data class GoLive(override val atS: Double, override val step: Int, val action: Action.GoLive) : Seller() {
        override fun label() = action.label()
    }

    /** Pin [product], ending the open pin first. */
    data class Pin(override val atS: Double, override val step: Int, val product: String) : Seller() {
        override fun label() = "pin $product"
    }

    /** End the open pin. */
    data class Unpin(override val atS: Double, override val step: Int) : Seller() {
        override fun label() = "unpin"
    }

    /** Sale [n] of [of] of the step: [quantity] units of [product]. */
    data class Sell(
        override val atS: Double,
        override val step: Int,
        val product: String,
        val quantity: Long,
        val n: Int,
        val of: Int,
    ) : Seller() {
        override fun label() = "sell $quantity $product ($n of $of)"
    }

    /** Push no frames until [untilS]. */
    data class Background(override val atS: Double, override val step: Int, val untilS: Double) : Seller() {
        override fun label() = "background until ${fmt(untilS)} s"
    }

    /** Cap the frame rate at [maxFps] (null: no cap, the phone is charged). */
    data class FrameCap(override val atS: Double, override val step: Int, val maxFps: Int?) : Seller() {
        override fun label() = if (maxFps == null) "charged" else "low battery ($maxFps fps)"
    }

    /** End the live. */
    data class End(override val atS: Double, override val step: Int) : Seller() {
        override fun label() = "end"
    }

    /** Upload the recorded replay. */
    data class UploadReplay(override val atS: Double, override val step: Int) : Seller() {
        override fun label() = "upload replay"
    }

    /** Cut the device's network. */
    data class NetworkDown(override val atS: Double, override val step: Int?) : Conductor() {
        override fun label() = "network down"
    }

    /** Give the device its network back. */
    data class NetworkUp(override val atS: Double, override val step: Int?) : Conductor() {
        override fun label() = "network up"
    }

    /** SIGKILL the app's process and start it again at [restartAtS]. */
    data class Kill(override val atS: Double, override val step: Int, val restartAtS: Double) : Conductor() {
        override fun label() = "app killed, restarted at ${fmt(restartAtS)} s"
    }
}

/**
 * What the app is doing at a moment of the run, from the cues before it: what a restarted app
 * takes up again (the farmer goes live again when the live had not ended).
 */
data class SellerState(
    /** The `go_live` played before and not ended since, else null. */
    val live: Action.GoLive?,
    /** Whether the live has been ended. */
    val ended: Boolean,
    /** The frame-rate cap in force, null for none. */
    val maxFps: Int?,
    /** The end of a background span in progress, else null. */
    val backgroundUntilS: Double?,
)

/**
 * A scenario's timeline as a device plays it: each sale on its own cue, the cues split between the
 * app ([sellerCues]) and the instrumentation ([conductorCues]). [extraOutages] are network outages
 * beyond the scenario's own, e.g. those of its network profile, which a device does not get from
 * anywhere else; they may not overlap each other or the scenario's.
 */
class Timeline(val scenario: Scenario, extraOutages: List<Span> = emptyList()) {
    /** The cues the app plays, in time order (ties in step order). */
    val sellerCues: List<Cue.Seller>

    /** The cues the instrumentation plays, in time order. */
    val conductorCues: List<Cue.Conductor>

    /** Every outage of the run, scripted and extra, in time order. */
    val outages: List<Span>

    init {
        val seller = mutableListOf<Cue.Seller>()
        val conductor = mutableListOf<Cue.Conductor>()
        scenario.timeline.forEachIndexed { i, s ->
            val step = i + 1
            when (val a = s.action) {
                is Action.GoLive -> seller += Cue.GoLive(s.atS, step, a)
                is Action.Pin -> seller += Cue.Pin(s.atS, step, a.product)
                Action.Unpin -> seller += Cue.Unpin(s.atS, step)
                is Action.Sell -> for (n in 1..a.count) {
                    seller += Cue.Sell(s.atS + a.everyS * (n - 1), step, a.product, a.quantity, n, a.count)
                }
                is Action.Background -> seller += Cue.Background(s.atS, step, s.atS + a.secs)
                is Action.LowBattery -> seller += Cue.FrameCap(s.atS, step, a.maxFps)
                Action.Charged -> seller += Cue.FrameCap(s.atS, step, null)
                Action.End -> seller += Cue.End(s.atS, step)
                Action.UploadReplay -> seller += Cue.UploadReplay(s.atS, step)
                Action.NetworkDown -> conductor += Cue.NetworkDown(s.atS, step)
                Action.NetworkUp -> conductor += Cue.NetworkUp(s.atS, step)
                is Action.KillApp -> conductor += Cue.Kill(s.atS, step, s.atS + a.restartAfterS)
            }
        }
        val scripted = scenario.scriptedOutages()
        val extra = extraOutages.sortedBy { it.fromS }
        extra.forEachIndexed { i, o ->
            require(o.fromS.isFinite() && o.toS.isFinite() && o.fromS >= 0 && o.toS > o.fromS && o.toS <= scenario.durationS) {
                "the outage ${fmt(o.fromS)}-${fmt(o.toS)} s must lie within 0..${fmt(scenario.durationS)} s and last some time"
            }
            require(i == 0 || extra[i - 1].toS < o.fromS) { "the outages ${fmt(extra[i - 1].fromS)}-${fmt(extra[i - 1].toS)} s and ${fmt(o.fromS)}-${fmt(o.toS)} s overlap" }
            scripted.firstOrNull { it.fromS <= o.toS && o.fromS <= it.toS }?.let {
                throw IllegalArgumentException(
                    "the outage ${fmt(o.fromS)}-${fmt(o.toS)} s overlaps the scenario's own, ${fmt(it.fromS)}-${fmt(it.toS)} s",
                )
            }
            conductor += Cue.NetworkDown(o.fromS, null)
            conductor += Cue.NetworkUp(o.toS, null)
        }
        // An outage still open at the end of the scenario's timeline is closed at the end of the run.
        if (scenario.timeline.lastOrNull { it.action is Action.NetworkDown || it.action is Action.NetworkUp }?.action is Action.NetworkDown) {
            conductor += Cue.NetworkUp(scenario.durationS, null)
        }
        sellerCues = seller.sortedWith(compareBy({ it.atS }, { it.step }))
        conductorCues = conductor.sortedWith(compareBy({ it.atS }, { it.step ?: Int.MAX_VALUE }))
        outages = (scripted + extra).sortedBy { it.fromS }
    }

    /** The app's state at [atS] from the cues before it (a cue at [atS] itself is not counted). */
    fun sellerStateAt(atS: Double): SellerState {
        var live: Action.GoLive? = null
        var ended = false
        var maxFps: Int? = null
        var backgroundUntil: Double? = null
        for (cue in sellerCues) {
            if (cue.atS >= atS) break
            when (cue) {
                is Cue.GoLive -> live = cue.action
                is Cue.End -> {
                    live = null
                    ended = true
                }
                is Cue.FrameCap -> maxFps = cue.maxFps
                is Cue.Background -> backgroundUntil = cue.untilS
                else -> {}
            }
        }
        return SellerState(live, ended, maxFps, backgroundUntil?.takeIf { it > atS })
    }

    /** The cues an app started at [resumeAtS] plays: those at or after it (0: all of them). */
    fun sellerCuesFrom(resumeAtS: Double): List<Cue.Seller> = sellerCues.filter { it.atS >= resumeAtS }

    /** The restarts of the app: (kill time, restart time), seconds. */
    fun restarts(): List<Span> = conductorCues.filterIsInstance<Cue.Kill>().map { Span(it.atS, it.restartAtS) }

    /** Parsing the outages given as an instrumentation argument. */
    companion object {
        /** Outages written `FROM-TO[,FROM-TO...]` in seconds, e.g. `20-28,65-73`; blank gives none. */
        fun parseOutages(text: String?): List<Span> {
            if (text.isNullOrBlank()) return emptyList()
            return text.split(',').map { part ->
                val bounds = part.trim().split('-')
                val from = bounds.getOrNull(0)?.trim()?.toDoubleOrNull()
                val to = bounds.getOrNull(1)?.trim()?.toDoubleOrNull()
                require(bounds.size == 2 && from != null && to != null) { "an outage is FROM-TO in seconds, e.g. 20-28 (got `$part`)" }
                Span(from, to)
            }
        }
    }
}
