package org.fieldcast.scenario

import android.app.Service
import android.content.Context
import android.content.Intent
import android.os.IBinder
import android.util.Log
import java.io.File
import kotlin.concurrent.thread

/**
 * What the app under test is told when it starts (the farmer opening it): the scenario, the run's
 * time 0 on the boot clock, the moment of the run it starts at, and where the platform and its
 * ingest are.
 */
data class SellerPlan(
    /** The scenario's JSON. */
    val scenarioJson: String,
    /** Time 0 of the run, `SystemClock.elapsedRealtime()` ms (one clock for every process). */
    val epochElapsedMs: Long,
    /** The run's second this start begins at: 0, or the restart after a kill. */
    val resumeAtS: Double,
    /** The platform's API root. */
    val api: String,
    /** The platform's token. */
    val token: String,
    /** The platform's live session id. */
    val sessionId: String,
    /** Where the app publishes, as the device reaches the ingest. */
    val publishUrl: String,
    /** The app's directory for this run: its store, the recording, the journal. */
    val dir: File,
) {
    /** The intent that starts [SellerService] with this plan. */
    fun intent(context: Context): Intent = Intent(context, SellerService::class.java)
        .putExtra(SCENARIO, scenarioJson)
        .putExtra(EPOCH, epochElapsedMs)
        .putExtra(RESUME_AT, resumeAtS)
        .putExtra(API, api)
        .putExtra(TOKEN, token)
        .putExtra(SESSION, sessionId)
        .putExtra(PUBLISH, publishUrl)
        .putExtra(DIR, dir.path)

    /** Reading a plan back from its intent. */
    companion object {
        private const val SCENARIO = "org.fieldcast.scenario.SCENARIO"
        private const val EPOCH = "org.fieldcast.scenario.EPOCH"
        private const val RESUME_AT = "org.fieldcast.scenario.RESUME_AT"
        private const val API = "org.fieldcast.scenario.API"
        private const val TOKEN = "org.fieldcast.scenario.TOKEN"
        private const val SESSION = "org.fieldcast.scenario.SESSION"
        private const val PUBLISH = "org.fieldcast.scenario.PUBLISH"
        private const val DIR = "org.fieldcast.scenario.DIR"

        /** The plan an intent made by [intent] carries; null when it carries none. */
        fun from(intent: Intent?): SellerPlan? {
            intent ?: return null
            return SellerPlan(
                scenarioJson = intent.getStringExtra(SCENARIO) ?: return null,
                epochElapsedMs = intent.getLongExtra(EPOCH, -1).takeIf { it >= 0 } ?: return null,
                resumeAtS = intent.getDoubleExtra(RESUME_AT, 0.0),
                api = intent.getStringExtra(API) ?: return null,
                token = intent.getStringExtra(TOKEN) ?: return null,
                sessionId = intent.getStringExtra(SESSION) ?: return null,
                publishUrl = intent.getStringExtra(PUBLISH) ?: return null,
                dir = File(intent.getStringExtra(DIR) ?: return null),
            )
        }
    }
}

/**
 * The app under test in a scenario run: a started service in its own process (`:seller`, declared
 * in the test APK's manifest) so that the instrumentation can kill it with SIGKILL and start it
 * again, as the system or a power cut ends a real app. It plays its part of the run
 * ([SellerRun]) on a thread of its own and stops itself when done; the system never restarts it.
 */
class SellerService : Service() {
    @Volatile
    private var running = false

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val plan = SellerPlan.from(intent)
        if (plan == null || running) {
            Log.w(TAG, if (plan == null) "started without a plan" else "already playing a run")
            return START_NOT_STICKY
        }
        running = true
        thread(name = "fieldcast-seller") {
            try {
                SellerRun(applicationContext, plan).run()
            } catch (e: Throwable) {
                Log.e(TAG, "the seller's run failed", e)
            } finally {
                running = false
                stopSelf(startId)
            }
        }
        return START_NOT_STICKY
    }

    override fun onBind(intent: Intent?): IBinder? = null

    private companion object {
        const val TAG = "FieldCastSeller"
    }
}
