package org.fieldcast.sample

import android.content.Intent

/**
 * Where the sample streams and syncs, from the launch intent's extras, e.g.
 * `adb shell am start -n org.fieldcast.sample/.LiveActivity -e ingest rtmp://127.0.0.1:1935/live/farm`.
 * The defaults suit the sandbox on the development machine reached through `adb reverse`.
 */
data class SampleSettings(
    val ingestUrl: String,
    val apiUrl: String,
    val token: String,
    val platformSessionId: String,
) {
    /** Reading the extras. */
    companion object {
        /** The settings of [intent], each missing extra taking its default. */
        fun from(intent: Intent) = SampleSettings(
            ingestUrl = intent.getStringExtra("ingest") ?: "rtmp://127.0.0.1:1935/live/farm",
            apiUrl = intent.getStringExtra("api") ?: "http://127.0.0.1:8080",
            token = intent.getStringExtra("token") ?: "sandbox-token",
            platformSessionId = intent.getStringExtra("session") ?: "farm",
        )
    }
}
