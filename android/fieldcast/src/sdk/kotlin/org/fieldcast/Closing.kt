package org.fieldcast

import java.util.concurrent.atomic.AtomicBoolean
import org.fieldcast.ffi.FieldCastException

/**
 * Guards a native object: once [close] has begun, [use] throws [FieldCastException.Closed]
 * instead of reaching a released object.
 */
internal class Closing(private val what: String) {
    private val closed = AtomicBoolean(false)

    /** True once closed. */
    val isClosed: Boolean
        get() = closed.get()

    /** Marks closed; true for the first call only, so that closing is idempotent. */
    fun close(): Boolean = closed.compareAndSet(false, true)

    /** Runs [block] unless closed; a call racing with close gets [FieldCastException.Closed]. */
    fun <T> use(block: () -> T): T {
        if (closed.get()) throw closedError()
        try {
            return block()
        } catch (e: IllegalStateException) {
            // The native object was released by a close() on another thread during this call.
            if (closed.get()) throw closedError()
            throw e
        }
    }

    fun closedError() = FieldCastException.Closed("this $what was closed; create a new one")
}
