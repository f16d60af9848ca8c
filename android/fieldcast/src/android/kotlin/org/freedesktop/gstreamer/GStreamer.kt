package org.freedesktop.gstreamer

import android.content.Context

/**
 * The Java side of GStreamer's Android runtime. `libgstreamer_android.so` registers [nativeInit]
 * on this exact class (`org/freedesktop/gstreamer/GStreamer`, static `nativeInit(Context)`) from its
 * `JNI_OnLoad`, so the class must exist under this name before that library is loaded, and the
 * library must be loaded by code of the app's class loader.
 */
object GStreamer {
    /**
     * Initialises GStreamer for [context]: points its cache, registry, HOME and temporary files at
     * the app's directories, routes its logs to logcat and calls `gst_init`. Throws
     * [Exception] when GStreamer cannot start. Idempotent on the native side.
     */
    @Throws(Exception::class)
    fun init(context: Context) = nativeInit(context)

    @JvmStatic
    private external fun nativeInit(context: Context)
}
