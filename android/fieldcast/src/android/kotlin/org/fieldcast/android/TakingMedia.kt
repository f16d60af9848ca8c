package org.fieldcast.android

import org.fieldcast.Streamer
import org.fieldcast.ffi.FieldCastException
import org.fieldcast.ffi.SessionState

/**
 * True while the session accepts pushed media (connecting, live or reconnecting): capture may run
 * before a live starts (the preview) and after it ends, and those frames are not pushed.
 */
internal val Streamer.isTakingMedia: Boolean
    get() = when (state.value) {
        SessionState.CONNECTING, SessionState.LIVE, SessionState.RECONNECTING -> true
        else -> false
    }

/**
 * Runs one push from a capture thread. A session that ended or was closed meanwhile is not an
 * error of the capture; anything else reaches [onFailure].
 */
internal inline fun pushSafely(onFailure: (Exception) -> Unit, push: () -> Unit) {
    try {
        push()
    } catch (e: FieldCastException.InvalidState) {
        // The session stopped between the state check and the push.
    } catch (e: FieldCastException.Closed) {
        // The streamer was closed while capture was still running.
    } catch (e: FieldCastException) {
        onFailure(e)
    }
}
