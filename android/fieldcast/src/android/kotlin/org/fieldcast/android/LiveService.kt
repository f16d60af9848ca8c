package org.fieldcast.android

import android.Manifest
import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.app.Service
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.content.pm.ServiceInfo
import android.os.Build
import android.os.IBinder
import android.os.PowerManager
import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.Job
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import org.fieldcast.Streamer
import org.fieldcast.ffi.SessionState
import org.fieldcast.isTerminal

/**
 * The foreground service that keeps a live going while the app is in the background or the
 * screen is off: it runs in the foreground with the camera and microphone service types, shows
 * the session's state in an ongoing notification, and holds a partial wake lock, so that the
 * capture threads, the encoder and the uplink keep running.
 *
 * The app keeps the [Streamer], the [CameraFrameSource] and the [MicrophoneSource] (they run
 * without an activity) and hands the streamer over from an activity in the foreground, once the
 * user granted CAMERA (and RECORD_AUDIO for sound):
 * ```
 * streamer.start()                          // or launch it, the service only watches the state
 * LiveService.start(context, streamer, "Oranges from the farm")
 * ...
 * streamer.stop()
 * LiveService.stop(context)
 * ```
 * The service stops itself when the session ends or fails. It is declared by the library's
 * manifest (`foregroundServiceType="camera|microphone"`, with the FOREGROUND_SERVICE_CAMERA,
 * FOREGROUND_SERVICE_MICROPHONE and WAKE_LOCK permissions). There is nothing to bind to.
 */
class LiveService : Service() {
    private val scope = MainScope()
    private var watch: Job? = null
    private lateinit var wakeLock: PowerManager.WakeLock

    override fun onCreate() {
        super.onCreate()
        val channel = NotificationChannel(CHANNEL_ID, "Live streaming", NotificationManager.IMPORTANCE_LOW)
        getSystemService(NotificationManager::class.java).createNotificationChannel(channel)
        wakeLock = getSystemService(PowerManager::class.java)
            .newWakeLock(PowerManager.PARTIAL_WAKE_LOCK, "fieldcast:live")
            .apply { acquire() }
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val title = intent?.getCharSequenceExtra(EXTRA_TITLE) ?: DEFAULT_TITLE
        val streamer = handedOver.get()
        goForeground(notification(title, streamer?.state?.value ?: SessionState.IDLE))
        if (streamer == null) {
            stopSelf()
            return START_NOT_STICKY
        }
        watch?.cancel()
        watch = scope.launch {
            streamer.state.collect { state ->
                getSystemService(NotificationManager::class.java).notify(NOTIFICATION_ID, notification(title, state))
                if (state.isTerminal()) stopSelf()
            }
        }
        // A live cannot resume after the process died: the system must not restart the service.
        return START_NOT_STICKY
    }

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onDestroy() {
        scope.cancel()
        if (wakeLock.isHeld) wakeLock.release()
        super.onDestroy()
    }

    private fun goForeground(notification: Notification) {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            startForeground(NOTIFICATION_ID, notification, grantedServiceTypes())
        } else {
            startForeground(NOTIFICATION_ID, notification)
        }
    }

    /** Camera, and microphone when RECORD_AUDIO is granted (Android 14 refuses a type without it). */
    private fun grantedServiceTypes(): Int {
        val microphone = checkSelfPermission(Manifest.permission.RECORD_AUDIO) == PackageManager.PERMISSION_GRANTED
        return ServiceInfo.FOREGROUND_SERVICE_TYPE_CAMERA or
            (if (microphone) ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE else 0)
    }

    private fun notification(title: CharSequence, state: SessionState): Notification {
        val openApp = packageManager.getLaunchIntentForPackage(packageName)?.let {
            PendingIntent.getActivity(this, 0, it, PendingIntent.FLAG_IMMUTABLE)
        }
        return Notification.Builder(this, CHANNEL_ID)
            .setSmallIcon(android.R.drawable.presence_video_online)
            .setContentTitle(title)
            .setContentText(describe(state))
            .setContentIntent(openApp)
            .setCategory(Notification.CATEGORY_SERVICE)
            .setOngoing(true)
            .apply {
                if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
                    setForegroundServiceBehavior(Notification.FOREGROUND_SERVICE_IMMEDIATE)
                }
            }
            .build()
    }

    /** Starting and stopping the service from the app. */
    companion object {
        private const val CHANNEL_ID = "fieldcast.live"
        private const val NOTIFICATION_ID = 4_601
        private const val EXTRA_TITLE = "org.fieldcast.android.TITLE"
        private const val DEFAULT_TITLE = "Live"
        private val handedOver = AtomicReference<Streamer?>()

        /**
         * Starts the service for [streamer] with [title] in its notification. Call it from the
         * foreground (an activity that the user sees) after CAMERA was granted.
         */
        fun start(context: Context, streamer: Streamer, title: CharSequence = DEFAULT_TITLE) {
            handedOver.set(streamer)
            val intent = Intent(context, LiveService::class.java).putExtra(EXTRA_TITLE, title)
            context.startForegroundService(intent)
        }

        /** Stops the service (the streamer itself is stopped and closed by the app). */
        fun stop(context: Context) {
            handedOver.set(null)
            context.stopService(Intent(context, LiveService::class.java))
        }

        private fun describe(state: SessionState): String = when (state) {
            SessionState.IDLE -> "Getting ready"
            SessionState.CONNECTING -> "Connecting"
            SessionState.LIVE -> "Live"
            SessionState.RECONNECTING -> "Reconnecting"
            SessionState.ENDING -> "Ending"
            SessionState.ENDED -> "Ended"
            SessionState.FAILED -> "Stopped by an error"
        }
    }
}
