package org.fieldcast.android

import android.content.Context
import org.fieldcast.FieldCast
import org.freedesktop.gstreamer.GStreamer

/**
 * Prepares FieldCast on Android; call it once before any other FieldCast call, e.g. in
 * `Application.onCreate`. It loads GStreamer's Android runtime (`libgstreamer_android.so`),
 * initialises GStreamer with the application's context (cache, registry and logs in the app's
 * directories), then loads the FieldCast core (`libfieldcast_ffi.so`), which uses that GStreamer.
 *
 * Idempotent and thread-safe: later calls return at once. Throws [UnsatisfiedLinkError] when a
 * native library is missing from the APK for this ABI, and [Exception] when GStreamer cannot start.
 */
fun FieldCast.init(context: Context) = NativeRuntime.load(context.applicationContext)

/** Loads the native libraries once per process, in the order the core needs them. */
private object NativeRuntime {
    @Volatile
    private var loaded = false

    @Synchronized
    fun load(context: Context) {
        if (loaded) return
        System.loadLibrary("gstreamer_android")
        GStreamer.init(context)
        System.loadLibrary("fieldcast_ffi")
        loaded = true
    }
}
