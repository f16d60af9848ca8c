package org.fieldcast.scenario

import org.json.JSONArray
import org.json.JSONException
import org.json.JSONObject
import org.json.JSONTokener

/**
 * A scenario of the field lab, as `qa/src/scenario.rs` defines it: the device and network profiles,
 * how long the run lasts, a timeline of what the farmer and the world do, and the bounds of the run.
 * The same JSON files (`qa/scenarios/`) play on the desktop lab and on a device.
 */
data class Scenario(
    /** A short name (letters, digits, `-`, `_`). */
    val name: String,
    /** What the scenario plays out. */
    val description: String,
    /** The device profile the desktop lab emulates; on a device, the device is its own profile. */
    val device: String,
    /** The network profile the desktop lab applies; a device test does not shape the network. */
    val network: String,
    /** How long the run lasts, seconds from its start. */
    val durationS: Double,
    /** What happens, in time order. */
    val timeline: List<Step>,
    /** The bounds the run must stay within. */
    val assertions: Assertions,
) {
    /** Spans with the network scripted down (from, to), seconds; one still open at the end lasts to [durationS]. */
    fun scriptedOutages(): List<Span> {
        val spans = mutableListOf<Span>()
        var down: Double? = null
        for (step in timeline) {
            when (step.action) {
                is Action.NetworkDown -> if (down == null) down = step.atS
                is Action.NetworkUp -> down?.let {
                    spans += Span(it, step.atS)
                    down = null
                }
                else -> {}
            }
        }
        down?.let { spans += Span(it, durationS) }
        return spans
    }

    /** Whether the scenario records the replay. */
    fun records(): Boolean = timeline.any { (it.action as? Action.GoLive)?.record == true }

    /** Parsing and checking scenario files. */
    companion object {
        /** The stream profiles a `go_live` may name. */
        val PROFILES = listOf("270p", "360p", "480p", "720p")

        /**
         * Parses and checks a scenario with the rules of the desktop lab; [source] names it in errors.
         * [products] are the ids the platform sells (its catalog); null leaves products unchecked.
         * Throws [ScenarioException].
         */
        fun parse(json: String, source: String, products: Collection<String>? = null): Scenario {
            val scenario = try {
                read(json)
            } catch (e: JSONException) {
                throw ScenarioException(ScenarioException.Kind.PARSE, "$source: ${e.message}")
            } catch (e: ParseError) {
                throw ScenarioException(ScenarioException.Kind.PARSE, "$source: ${e.message}")
            }
            scenario.check(products)?.let { throw ScenarioException(ScenarioException.Kind.INVALID, "$source: $it") }
            return scenario
        }

        private val SCENARIO_FIELDS = setOf("name", "description", "device", "network", "duration_s", "timeline", "assertions")
        private val ASSERTION_FIELDS = setOf(
            "live_within_s", "back_within_s", "latency_p95_ms", "sales_match", "max_frame_gap_ms", "peak_rss_mb", "cpu_pct_of_device",
        )

        private fun read(json: String): Scenario {
            val value = JSONTokener(json).nextValue()
            val root = value as? JSONObject ?: throw ParseError("a scenario is a JSON object")
            root.keys().forEach { if (it !in SCENARIO_FIELDS) throw ParseError("unknown field `$it`, expected one of ${SCENARIO_FIELDS.joinToString()}") }
            val timeline = root.required("timeline") { it as? JSONArray }
            return Scenario(
                name = root.required("name") { it as? String },
                description = root.optional("description") { it as? String } ?: "",
                device = root.required("device") { it as? String },
                network = root.required("network") { it as? String },
                durationS = root.required("duration_s", ::asDouble),
                timeline = (0 until timeline.length()).map { i ->
                    val step = timeline.get(i) as? JSONObject ?: throw ParseError("timeline[$i] is not an object")
                    readStep(step, i)
                },
                assertions = root.optional("assertions") { it as? JSONObject }?.let(::readAssertions) ?: Assertions(),
            )
        }

        private fun readStep(o: JSONObject, i: Int): Step {
            val at = o.required("at_s", ::asDouble)
            val action = when (val kind = o.required("action") { it as? String }) {
                "go_live" -> Action.GoLive(
                    profile = o.optional("profile") { it as? String } ?: "480p",
                    abr = o.optional("abr") { it as? Boolean } ?: true,
                    record = o.optional("record") { it as? Boolean } ?: false,
                )
                "pin" -> Action.Pin(o.required("product") { it as? String })
                "unpin" -> Action.Unpin
                "sell" -> Action.Sell(
                    product = o.required("product") { it as? String },
                    quantity = o.optional("quantity", ::asLong) ?: 1,
                    count = o.optional("count") { asUnsigned(it) } ?: 1,
                    everyS = o.optional("every_s", ::asDouble) ?: 0.0,
                )
                "network_down" -> Action.NetworkDown
                "network_up" -> Action.NetworkUp
                "background" -> Action.Background(o.required("secs", ::asDouble))
                "low_battery" -> Action.LowBattery(o.required("max_fps") { asUnsigned(it) })
                "charged" -> Action.Charged
                "kill_app" -> Action.KillApp(o.optional("restart_after_s", ::asDouble) ?: 3.0)
                "end" -> Action.End
                "upload_replay" -> Action.UploadReplay
                else -> throw ParseError("timeline[$i]: unknown action `$kind`")
            }
            return Step(at, action)
        }

        private fun readAssertions(o: JSONObject): Assertions {
            o.keys().forEach { if (it !in ASSERTION_FIELDS) throw ParseError("assertions: unknown field `$it`, expected one of ${ASSERTION_FIELDS.joinToString()}") }
            return Assertions(
                liveWithinS = o.nullable("live_within_s", ::asDouble),
                backWithinS = o.nullable("back_within_s", ::asDouble),
                latencyP95Ms = o.nullable("latency_p95_ms") { asUnsignedLong(it) },
                salesMatch = o.optional("sales_match") { it as? Boolean } ?: true,
                maxFrameGapMs = o.nullable("max_frame_gap_ms") { asUnsignedLong(it) },
                peakRssMb = o.nullable("peak_rss_mb", ::asDouble),
                cpuPctOfDevice = o.nullable("cpu_pct_of_device", ::asDouble),
            )
        }

        /** A field that must be there, of the type [convert] accepts (it returns null otherwise). */
        private fun <T> JSONObject.required(key: String, convert: (Any) -> T?): T {
            if (!has(key)) throw ParseError("missing field `$key`")
            return optional(key, convert)!!
        }

        /** A field with a default: absent gives null; present, it must have the right type (not null). */
        private fun <T> JSONObject.optional(key: String, convert: (Any) -> T?): T? {
            if (!has(key)) return null
            val raw = get(key)
            return convert(raw) ?: throw ParseError("field `$key`: invalid value $raw")
        }

        /** An optional bound: absent or null gives null. */
        private fun <T> JSONObject.nullable(key: String, convert: (Any) -> T?): T? =
            if (!has(key) || isNull(key)) null else optional(key, convert)

        private fun asDouble(v: Any): Double? = (v as? Number)?.toDouble()

        /** An integer (not a number with a fraction or an exponent), as a signed 64-bit value. */
        private fun asLong(v: Any): Long? = when (v) {
            is Int -> v.toLong()
            is Long -> v
            else -> null
        }

        private fun asUnsignedLong(v: Any): Long? = asLong(v)?.takeIf { it >= 0 }

        private fun asUnsigned(v: Any): Int? = asLong(v)?.takeIf { it in 0..UInt.MAX_VALUE.toLong() }?.let {
            if (it > Int.MAX_VALUE) throw ParseError("$it is too large here") else it.toInt()
        }
    }

    /** Every rule a playable scenario keeps (those of the desktop lab); the first broken one, in words. */
    private fun check(products: Collection<String>?): String? {
        if (name.isEmpty() || !name.all { it.isAsciiLetterOrDigit() || it == '-' || it == '_' }) {
            return "the name `$name` must be letters, digits, `-` or `_`"
        }
        if (!(durationS.isFinite() && durationS > 0.0 && durationS <= 86_400.0)) {
            return "duration_s ${fmt(durationS)} must be above 0 and at most a day"
        }
        var live = false
        var ended = false
        var down = false
        var last = 0.0
        val appDown = timeline.mapNotNull { s ->
            (s.action as? Action.KillApp)?.let { Span(s.atS, s.atS + it.restartAfterS) }
        }
        timeline.forEachIndexed { n, step ->
            val at = { m: String -> "step ${n + 1} (at ${fmt(step.atS)} s, ${step.action.label()}): $m" }
            if (!(step.atS.isFinite() && step.atS >= 0.0 && step.atS <= durationS)) return at("at_s must be within 0..=${fmt(durationS)}")
            if (step.atS < last) return at("the timeline must be in time order")
            last = step.atS
            val appAction = step.action !is Action.KillApp && step.action != Action.NetworkDown && step.action != Action.NetworkUp
            val times = (step.action as? Action.Sell)?.let { a -> (0 until a.count).map { step.atS + a.everyS * it } } ?: listOf(step.atS)
            val dead = if (appAction) times.firstNotNullOfOrNull { t -> appDown.firstOrNull { t > it.fromS && t < it.toS } } else null
            if (dead != null) {
                return at("the app is not running then (killed at ${fmt(dead.fromS)} s, started again at ${fmt(dead.toS)} s)")
            }
            val needsLive = { what: String -> if (live && !ended) null else at("$what needs a live that has started and not ended") }
            val product = (step.action as? Action.Pin)?.product ?: (step.action as? Action.Sell)?.product
            if (product != null && products != null && product !in products) {
                return at("unknown product `$product` (the platform sells ${products.joinToString()})")
            }
            when (val a = step.action) {
                is Action.GoLive -> {
                    if (live) return at("the scenario goes live once")
                    if (a.profile !in PROFILES) return at("profile `${a.profile}` is not one of ${PROFILES.joinToString()}")
                    live = true
                }
                is Action.Pin, Action.Unpin -> needsLive("a pin")?.let { return it }
                is Action.Sell -> {
                    if (a.quantity < 1 || a.count < 1 || !(a.everyS.isFinite() && a.everyS >= 0.0)) {
                        return at("quantity and count must be at least 1, every_s at least 0")
                    }
                    val lastSale = step.atS + a.everyS * (a.count - 1)
                    if (lastSale > durationS) return at("the last sale would be at ${fmt(lastSale)} s, after the end of the run")
                }
                Action.NetworkDown -> {
                    if (down) return at("the network is already down")
                    down = true
                }
                Action.NetworkUp -> {
                    if (!down) return at("the network is not down")
                    down = false
                }
                is Action.Background -> {
                    needsLive("backgrounding")?.let { return it }
                    if (!(a.secs.isFinite() && a.secs > 0.0)) return at("secs must be above 0")
                }
                is Action.LowBattery -> {
                    needsLive("a frame-rate cap")?.let { return it }
                    if (a.maxFps !in 1..60) return at("max_fps must be within 1..=60")
                }
                Action.Charged -> needsLive("the end of a frame-rate cap")?.let { return it }
                is Action.KillApp -> if (!(a.restartAfterS.isFinite() && a.restartAfterS >= 0.0)) return at("restart_after_s must be at least 0")
                Action.End -> {
                    needsLive("ending")?.let { return it }
                    ended = true
                }
                Action.UploadReplay -> if (!ended || !records()) return at("a replay upload needs a recorded live that has ended")
            }
        }
        if (!live) return "the timeline never goes live"
        return null
    }

    private fun Char.isAsciiLetterOrDigit() = this in 'a'..'z' || this in 'A'..'Z' || this in '0'..'9'

    private class ParseError(message: String) : Exception(message)
}

/** One action at one moment, [atS] seconds from the start of the run. */
data class Step(val atS: Double, val action: Action)

/** A span of the run, seconds from its start. */
data class Span(val fromS: Double, val toS: Double)

/** What can happen during a live (the `action` of a step). */
sealed class Action {
    /** A short label for reports, as the desktop lab writes it, e.g. `sell 3 × 1 orange-box`. */
    abstract fun label(): String

    /** The farmer goes live at [profile] (`270p`...`720p`), with the adaptive bitrate and recording or not. */
    data class GoLive(val profile: String = "480p", val abr: Boolean = true, val record: Boolean = false) : Action() {
        override fun label() = "go live $profile${if (abr) ", ABR" else ""}${if (record) ", recording" else ""}"
    }

    /** [product] is pinned (the open pin, if any, is ended first). */
    data class Pin(val product: String) : Action() {
        override fun label() = "pin $product"
    }

    /** The open pin is ended. */
    object Unpin : Action() {
        override fun label() = "unpin"
    }

    /** [count] sales of [quantity] units of [product], [everyS] seconds apart. */
    data class Sell(val product: String, val quantity: Long = 1, val count: Int = 1, val everyS: Double = 0.0) : Action() {
        override fun label() = "sell $count × $quantity $product"
    }

    /** The network drops out completely (until [NetworkUp]). */
    object NetworkDown : Action() {
        override fun label() = "network down"
    }

    /** The network comes back. */
    object NetworkUp : Action() {
        override fun label() = "network up"
    }

    /** The app goes to the background: no frames for [secs] seconds. */
    data class Background(val secs: Double) : Action() {
        override fun label() = "background ${fmt(secs)} s"
    }

    /** The battery runs low: at most [maxFps] frames per second from now on. */
    data class LowBattery(val maxFps: Int) : Action() {
        override fun label() = "low battery ($maxFps fps)"
    }

    /** The phone is charged again: the frame rate is no longer capped. */
    object Charged : Action() {
        override fun label() = "charged"
    }

    /** The app is killed with SIGKILL and started again [restartAfterS] seconds later. */
    data class KillApp(val restartAfterS: Double = 3.0) : Action() {
        override fun label() = "app killed"
    }

    /** The farmer ends the live. */
    object End : Action() {
        override fun label() = "end"
    }

    /** The recorded replay is uploaded to the platform. */
    object UploadReplay : Action() {
        override fun label() = "upload replay"
    }
}

/** The bounds of a run; each one left null is not checked. */
data class Assertions(
    /** Live within this many seconds of `go_live`. */
    val liveWithinS: Double? = null,
    /** Back within this many seconds of each outage's end and each restart of the app. */
    val backWithinS: Double? = null,
    /** The viewer's p95 latency, capture to decode, ms (measured by the desktop lab's viewer). */
    val latencyP95Ms: Long? = null,
    /** The platform holds every sale taken exactly once, and nothing else. */
    val salesMatch: Boolean = true,
    /** No gap between consecutive video frames of the recording longer than this, ms. */
    val maxFrameGapMs: Long? = null,
    /** The publisher's resident memory never above this, MB. */
    val peakRssMb: Double? = null,
    /** The publisher's mean CPU while live at most this percent of the device. */
    val cpuPctOfDevice: Double? = null,
)

/** Why a scenario cannot be used: not a scenario ([Kind.PARSE]) or not playable ([Kind.INVALID]). */
class ScenarioException(val kind: Kind, message: String) : Exception(message) {
    /** The two ways a scenario file fails, as the desktop lab tells them apart. */
    enum class Kind { PARSE, INVALID }
}

/** A number of seconds as the desktop lab prints it: `2`, `25.5`. */
fun fmt(value: Double): String =
    if (value.isFinite() && value == Math.floor(value) && Math.abs(value) < 1e15) value.toLong().toString() else value.toString()
