package org.fieldcast.android

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.os.Build

/**
 * The runtime permissions a live needs, which the app requests (the library only declares the
 * install-time ones): CAMERA for [CameraFrameSource] and [LiveService], RECORD_AUDIO for
 * [MicrophoneSource], and POST_NOTIFICATIONS (Android 13+) so that [LiveService]'s notification shows.
 */
object LivePermissions {
    /** Every runtime permission of a live on this Android version. */
    val all: List<String> = buildList {
        add(Manifest.permission.CAMERA)
        add(Manifest.permission.RECORD_AUDIO)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) add(Manifest.permission.POST_NOTIFICATIONS)
    }

    /** Those of [all] that [context] does not hold yet: pass them to `requestPermissions`. */
    fun missing(context: Context): List<String> =
        all.filter { context.checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED }
}
