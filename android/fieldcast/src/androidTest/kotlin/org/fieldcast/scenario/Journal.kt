package org.fieldcast.scenario

import java.io.File
import java.io.FileOutputStream
import org.json.JSONException
import org.json.JSONObject

/**
 * One line of the seller's journal: [t] seconds from the start of the run, the process [pid] that
 * wrote it, the [event]'s name and its other [fields].
 */
data class JournalEvent(val t: Double, val pid: Int, val event: String, val fields: JSONObject) {
    /** A string field, or null. */
    fun string(key: String): String? = if (fields.has(key) && !fields.isNull(key)) fields.getString(key) else null

    /** A number field, or null. */
    fun double(key: String): Double? = if (fields.has(key) && !fields.isNull(key)) fields.getDouble(key) else null

    /** An integer field, or null. */
    fun long(key: String): Long? = if (fields.has(key) && !fields.isNull(key)) fields.getLong(key) else null
}

/** The names of the journal's events, shared by the writer (the seller) and the reader (the conductor). */
object Events {
    /** The app's process started: `resume_at` (0 for the first start). */
    const val STARTED = "started"

    /** A cue was played: `label`, `step`. */
    const val CUE = "cue"

    /** The live session changed state: `to` (the SessionState's name). */
    const val STATE = "state"

    /** The session's statistics of the last second: `state`, `bytes_sent`, `input_fps`, `output_fps`, `video_kbps`. */
    const val STATS = "stats"

    /** The process's resources, every second: `state`, `cpu_ms`, `rss_mb`, `hwm_mb`, `pss_mb`, `cores`. */
    const val USAGE = "usage"

    /** A sale returned from `Commerce.sell`: `id`, `product`, `quantity`. */
    const val SALE = "sale"

    /** A pin was made: `id`, `product`. */
    const val PIN = "pin"

    /** A pin was ended: `id`. */
    const val UNPIN = "unpin"

    /** The replay was uploaded: `files`, `bytes`. */
    const val REPLAY = "replay"

    /** Something the app tried failed: `what`, `message`. */
    const val FAILED = "failed"

    /** The live session reported an error (it reconnects by itself unless it then fails): `message`. */
    const val SESSION_ERROR = "session_error"

    /** Something worth knowing that is not a failure: `message`. */
    const val NOTE = "note"

    /** The app's part of the run stopped on an error it could not go on from: `message`. */
    const val ABORTED = "aborted"

    /** The outbox after the last cue: `idle`, `pending`, `in_flight`, `conflicted`, `synced`. */
    const val OUTBOX = "outbox"

    /** The ids of every sale in the phone's store at the end: `ids` (comma-separated). */
    const val STORE_SALES = "store_sales"

    /** The app finished its part of the run. */
    const val DONE = "done"
}

/**
 * Appends events to the journal file as JSON lines, one write per line (O_APPEND), so that a line
 * written before a SIGKILL is in the file and one cut by it is at most the last, torn line. Every
 * process of the app that plays a part of the run appends to the same file. Thread-safe.
 *
 * @param clock seconds from the start of the run, now.
 */
class JournalWriter(file: File, private val pid: Int, private val clock: () -> Double) : AutoCloseable {
    private val out = FileOutputStream(file, true)

    /**
     * Writes [event] with [fields] (name-value pairs; values are strings, numbers, booleans or null;
     * a number that is not finite, which JSON cannot hold, is written as null).
     */
    @Synchronized
    fun write(event: String, vararg fields: Pair<String, Any?>) {
        val line = JSONObject()
        line.put("t", round(clock()))
        line.put("pid", pid)
        line.put("event", event)
        for ((key, value) in fields) {
            val finite = when (value) {
                is Double -> value.takeIf { it.isFinite() }
                is Float -> value.takeIf { it.isFinite() }
                else -> value
            }
            line.put(key, finite ?: JSONObject.NULL)
        }
        out.write((line.toString() + "\n").toByteArray())
    }

    /** Closes the file. */
    @Synchronized
    override fun close() = out.close()

    private fun round(t: Double) = Math.round(t * 1000) / 1000.0
}

/** A journal read back: its events in file order, and how many lines were not events (a torn last line). */
data class Journal(val events: List<JournalEvent>, val unreadable: Int) {
    /** The events named [event]. */
    fun named(event: String): List<JournalEvent> = events.filter { it.event == event }

    /** Reading journals. */
    companion object {
        /** Reads [file]; a missing file is an empty journal. */
        fun read(file: File): Journal = if (file.exists()) parse(file.readText()) else Journal(emptyList(), 0)

        /** Parses the lines of a journal. */
        fun parse(text: String): Journal {
            val events = mutableListOf<JournalEvent>()
            var unreadable = 0
            for (line in text.lineSequence()) {
                if (line.isBlank()) continue
                try {
                    val o = JSONObject(line)
                    val t = o.getDouble("t")
                    val pid = o.getInt("pid")
                    val event = o.getString("event")
                    o.remove("t")
                    o.remove("pid")
                    o.remove("event")
                    events += JournalEvent(t, pid, event, o)
                } catch (e: JSONException) {
                    unreadable++
                }
            }
            return Journal(events, unreadable)
        }
    }
}
