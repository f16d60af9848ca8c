package org.fieldcast.scenario

import android.app.Instrumentation
import android.net.ConnectivityManager
import android.os.ParcelFileDescriptor
import android.os.SystemClock

/**
 * Cuts and restores the device's network from the instrumentation, with shell commands run through
 * [android.app.UiAutomation.executeShellCommand] (as the `shell` user, which may switch radios):
 * mode `svc` turns Wi-Fi and mobile data off and on (`svc wifi|data disable|enable`), mode
 * `airplane` toggles airplane mode (`cmd connectivity airplane-mode enable|disable`, Android 11+).
 * Each switch waits until the system's default network is gone or back, so the app's
 * `NetworkMonitor` hears of it as it would of a real drop-out. Traffic that does not go over the
 * device's network (`adb reverse` over USB) is not cut; the conductor checks for that.
 */
class NetworkSwitch(private val instrumentation: Instrumentation, private val mode: String) {
    private val connectivity: ConnectivityManager =
        instrumentation.targetContext.getSystemService(ConnectivityManager::class.java)

    /** Whether the network was switched off by [down] and not yet back on. */
    @Volatile
    var isDown = false
        private set

    /** Switches the network off; null when the device has no default network within 15 s, else why not. */
    fun down(): String? {
        isDown = true
        val commands = if (mode == "airplane") listOf("cmd connectivity airplane-mode enable") else listOf("svc wifi disable", "svc data disable")
        commands.forEach(::shell)
        return if (waitFor(DOWN_WAIT_MS) { connectivity.activeNetwork == null }) {
            null
        } else {
            "the device still has a network ${connectivity.activeNetwork} after `${commands.joinToString("`, `")}` (an Ethernet link?)"
        }
    }

    /** Switches the network on; true when the device has a default network again within 60 s. */
    fun up(): Boolean {
        val commands = if (mode == "airplane") listOf("cmd connectivity airplane-mode disable") else listOf("svc wifi enable", "svc data enable")
        commands.forEach(::shell)
        isDown = false
        return waitFor(UP_WAIT_MS) { connectivity.activeNetwork != null }
    }

    /** Runs [command] as the shell user and returns what it printed. */
    private fun shell(command: String): String {
        val output = instrumentation.uiAutomation.executeShellCommand(command)
        return ParcelFileDescriptor.AutoCloseInputStream(output).use { it.readBytes().decodeToString() }
    }

    private fun waitFor(timeoutMs: Long, condition: () -> Boolean): Boolean {
        val deadline = SystemClock.elapsedRealtime() + timeoutMs
        while (SystemClock.elapsedRealtime() < deadline) {
            if (condition()) return true
            Thread.sleep(POLL_MS)
        }
        return condition()
    }

    private companion object {
        const val DOWN_WAIT_MS = 15_000L
        const val UP_WAIT_MS = 60_000L
        const val POLL_MS = 100L
    }
}
