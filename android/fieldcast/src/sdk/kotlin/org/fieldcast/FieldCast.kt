package org.fieldcast

import org.fieldcast.ffi.FieldCastException
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.SyncConfig

/**
 * The entry point of the FieldCast SDK: a [Streamer] goes live, a [Commerce] keeps the catalog,
 * sales and pins on the phone and syncs them to the platform exactly once.
 *
 * On Android, call `FieldCast.init(context)` (from `org.fieldcast.android`) once before anything
 * else: it loads and initialises GStreamer's Android runtime before the core.
 */
object FieldCast {
    /** The version of the native library. */
    val version: String
        get() = org.fieldcast.ffi.fieldcastVersion()

    /**
     * A live session for [config], not started yet. Throws [FieldCastException] at once for a bad
     * configuration (`InvalidConfig`, `InvalidUrl`) or a missing component (`MissingComponent`).
     */
    @Throws(FieldCastException::class)
    fun streamer(config: SessionConfig): Streamer = Streamer(config)

    /**
     * The store at [databasePath] (created if missing) and, with [sync], the engine that sends its
     * outbox to the platform.
     */
    @Throws(FieldCastException::class)
    fun commerce(databasePath: String, sync: SyncConfig? = null): Commerce = Commerce(databasePath, sync)
}
