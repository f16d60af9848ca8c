package org.fieldcast.android

import android.os.SystemClock

/**
 * Puts camera and microphone capture times on one clock, the boot time of
 * [SystemClock.elapsedRealtimeNanos], in microseconds: the core maps the timestamps of audio and
 * video onto the stream with one shared origin, so both must come from the same clock.
 */
internal object CaptureClock {
    /** Now, in µs of boot time. */
    fun nowUs(): Long = SystemClock.elapsedRealtimeNanos() / 1_000

    /** A boot-time instant in ns, in µs. */
    fun fromBootTimeNs(ns: Long): Long = ns / 1_000

    /** A `System.nanoTime` (CLOCK_MONOTONIC) instant, moved onto boot time, in µs. */
    fun fromMonotonicNs(ns: Long): Long = (ns + SystemClock.elapsedRealtimeNanos() - System.nanoTime()) / 1_000
}
