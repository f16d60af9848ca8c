package org.fieldcast.sample

import android.Manifest
import android.app.Activity
import android.content.pm.PackageManager
import android.os.Bundle
import android.view.ViewGroup.LayoutParams.MATCH_PARENT
import android.view.ViewGroup.LayoutParams.WRAP_CONTENT
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import android.widget.Toast
import java.io.File
import kotlin.concurrent.thread
import kotlinx.coroutines.Job
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import org.fieldcast.Commerce
import org.fieldcast.FieldCast
import org.fieldcast.Streamer
import org.fieldcast.android.CameraFrameSource
import org.fieldcast.android.LivePermissions
import org.fieldcast.android.LiveService
import org.fieldcast.android.MicrophoneSource
import org.fieldcast.android.NetworkMonitor
import org.fieldcast.android.init
import org.fieldcast.ffi.AudioFormat
import org.fieldcast.ffi.FieldCastException
import org.fieldcast.ffi.LiveStats
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.Product
import org.fieldcast.ffi.QueueState
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.SessionState
import org.fieldcast.ffi.SyncConfig
import org.fieldcast.ffi.VideoFormat
import org.fieldcast.isTerminal

/**
 * The farmer's screen: the camera preview, a "Go live" button, the live's state and bitrate, the
 * number of sales waiting to sync, and the products with pin and sell buttons. Views are built in
 * code. Settings come from the launch intent (see [SampleSettings]).
 */
class LiveActivity : Activity() {
    private val scope = MainScope()
    private lateinit var settings: SampleSettings
    private lateinit var commerce: Commerce
    private lateinit var network: NetworkMonitor
    private var camera: CameraFrameSource? = null
    private var live: Live? = null
    private var liveWatch: Job? = null
    private var products: List<Product> = emptyList()
    private val pins = mutableMapOf<String, String>()

    private lateinit var preview: CameraPreview
    private lateinit var stateText: TextView
    private lateinit var bitrateText: TextView
    private lateinit var syncBadge: TextView
    private lateinit var liveButton: Button
    private lateinit var productList: LinearLayout

    /** A running live: the session and the microphone that feeds it. */
    private class Live(val streamer: Streamer, val microphone: MicrophoneSource)

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        FieldCast.init(this)
        settings = SampleSettings.from(intent)
        setContentView(buildScreen())
        commerce = FieldCast.commerce(File(filesDir, "shop.db").path, SyncConfig(settings.apiUrl, settings.token))
        network = NetworkMonitor(this).apply { addListener(commerce::setNetworkAvailable) }
        scope.launch { commerce.queue.collect(::showQueue) }
        scope.launch { loadProducts(refresh = true) }
        val missing = LivePermissions.missing(this)
        if (missing.isEmpty()) openCamera() else requestPermissions(missing.toTypedArray(), PERMISSIONS_REQUEST)
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        if (checkSelfPermission(Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            openCamera()
        } else {
            showError("The camera permission is needed to go live")
        }
    }

    override fun onDestroy() {
        endLive()
        camera?.close()
        network.close()
        scope.cancel()
        commerce.close()
        super.onDestroy()
    }

    private fun buildScreen(): ScrollView {
        preview = CameraPreview(this)
        stateText = TextView(this).apply { text = "Not live" }
        bitrateText = TextView(this)
        syncBadge = TextView(this)
        liveButton = Button(this).apply {
            text = "Go live"
            isEnabled = false
            setOnClickListener { if (live == null) goLive() else endLive() }
        }
        productList = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        val screen = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            val pad = (16 * resources.displayMetrics.density).toInt()
            setPadding(pad, pad, pad, pad)
            addView(preview, LinearLayout.LayoutParams(MATCH_PARENT, resources.displayMetrics.widthPixels * 9 / 16))
            listOf(stateText, bitrateText, syncBadge, liveButton, productList).forEach {
                addView(it, LinearLayout.LayoutParams(MATCH_PARENT, WRAP_CONTENT))
            }
        }
        return ScrollView(this).apply { addView(screen) }
    }

    private fun openCamera() {
        if (camera != null) return
        val id = CameraFrameSource.backCameraId(this)
        val size = CameraFrameSource.closestSize(this, id, 1280, 720)
        camera = CameraFrameSource(this, size.width, size.height, id, ::showError).also {
            preview.show(it)
            it.start()
        }
        liveButton.isEnabled = true
    }

    private fun goLive() {
        val camera = camera ?: return
        val video = VideoFormat(PixelFormat.YUV420_FLEXIBLE, camera.width.toUInt(), camera.height.toUInt())
        val streamer = try {
            FieldCast.streamer(SessionConfig(settings.ingestUrl, MediaSource.App(video, AudioFormat(48_000u, 1u))))
                .apply { linkCommerce(commerce, settings.platformSessionId) }
        } catch (e: FieldCastException) {
            showError(e)
            return
        }
        val microphone = MicrophoneSource(streamer, ::showError)
        live = Live(streamer, microphone)
        network.addListener(streamer::setNetworkAvailable)
        camera.streamer = streamer
        try {
            microphone.start()
        } catch (e: RuntimeException) {
            showError(e)
        }
        LiveService.start(this, streamer, "Live from the farm")
        liveWatch = scope.launch {
            launch { streamer.state.collect(::showState) }
            launch { streamer.stats.collect(::showStats) }
            try {
                streamer.start()
            } catch (e: FieldCastException) {
                showError(e)
                endLive()
            }
        }
        renderProducts()
    }

    private fun endLive() {
        val ending = live ?: return
        live = null
        liveWatch?.cancel()
        camera?.streamer = null
        network.removeListener(ending.streamer::setNetworkAvailable)
        ending.microphone.close()
        LiveService.stop(this)
        // Closing ends the stream and waits for its drain: off the main thread.
        thread(name = "end-live") { ending.streamer.close() }
        pins.clear()
        stateText.text = "Not live"
        bitrateText.text = ""
        liveButton.text = "Go live"
        renderProducts()
    }

    private fun showState(state: SessionState) {
        stateText.text = state.name.lowercase().replaceFirstChar(Char::uppercase)
        liveButton.text = "End live"
        if (state.isTerminal()) endLive()
    }

    private fun showStats(stats: LiveStats?) {
        bitrateText.text = stats?.let {
            "%.0f kbit/s, %dp, %d frames dropped".format(it.videoKbps + it.audioKbps, it.height.toInt(), it.droppedFrames.toLong())
        } ?: ""
    }

    private fun showQueue(queue: QueueState) {
        val waiting = queue.pending + queue.inFlight
        val paused = queue.pausedReason?.let { " (paused: ${it::class.simpleName})" } ?: ""
        syncBadge.text = "$waiting sales waiting to sync$paused" +
            if (queue.conflicted > 0u) ", ${queue.conflicted} refused" else ""
    }

    private suspend fun loadProducts(refresh: Boolean = false) {
        try {
            if (refresh && commerce.products().isEmpty()) commerce.refreshCatalog()
            products = commerce.products()
        } catch (e: FieldCastException) {
            showError(e)
        }
        renderProducts()
    }

    private fun renderProducts() {
        productList.removeAllViews()
        products.forEach { product ->
            val pinned = product.id in pins
            productList.addView(ProductRow(this, product, pinned, live != null, { togglePin(product) }, { sell(product) }))
        }
    }

    private fun togglePin(product: Product) {
        val streamer = live?.streamer ?: return
        scope.launch {
            try {
                val pinId = pins[product.id]
                if (pinId == null) {
                    pins[product.id] = streamer.pin(product.id).id
                } else {
                    streamer.unpin(pinId)
                    pins.remove(product.id)
                }
            } catch (e: FieldCastException) {
                showError(e)
            }
            renderProducts()
        }
    }

    private fun sell(product: Product) {
        scope.launch {
            try {
                commerce.sell(product.id, sessionId = live?.let { settings.platformSessionId })
            } catch (e: FieldCastException) {
                showError(e)
            }
            loadProducts()
        }
    }

    private fun showError(error: Exception) = showError(error.message ?: error.toString())

    private fun showError(message: String) = runOnUiThread { Toast.makeText(this, message, Toast.LENGTH_LONG).show() }

    private companion object {
        const val PERMISSIONS_REQUEST = 1
    }
}
