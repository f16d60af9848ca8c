package org.fieldcast.android

import android.annotation.SuppressLint
import android.content.Context
import android.graphics.ImageFormat
import android.hardware.camera2.CameraAccessException
import android.hardware.camera2.CameraCaptureSession
import android.hardware.camera2.CameraCharacteristics
import android.hardware.camera2.CameraDevice
import android.hardware.camera2.CameraManager
import android.media.ImageReader
import android.os.Handler
import android.os.HandlerThread
import android.util.Size
import android.view.Surface
import kotlin.math.abs
import org.fieldcast.Streamer

/**
 * Feeds a [Streamer] from a Camera2 camera: one capture session sends every frame to an
 * [ImageReader] in `YUV_420_888`, whose planes are pushed as the camera filled them (see
 * [pushImage]), and, when the app gives one, to a preview [Surface].
 *
 * Camera work runs on the source's own background thread; [start], [stop], [setPreview] and
 * [close] may be called from any thread and return at once. Frames are pushed only while
 * [streamer] is set and connecting, live or reconnecting, so the preview may run before and after
 * a live. Needs the CAMERA permission, which the app requests; a refused permission or a camera
 * error reaches [onFailure] on the camera thread. Frames are sent as the sensor delivers them
 * (rotation is left to the app).
 *
 * @param width the frame width; a size the camera offers for `YUV_420_888`, see [closestSize].
 * @param height the frame height.
 * @param cameraId the camera to open; the first back-facing one by default.
 * @param onFailure receives camera errors and frames the core refused.
 */
class CameraFrameSource(
    context: Context,
    val width: Int,
    val height: Int,
    val cameraId: String = backCameraId(context),
    private val onFailure: (Exception) -> Unit = {},
) : AutoCloseable {
    /** Where frames go; null keeps only the preview running. */
    @Volatile
    var streamer: Streamer? = null

    private val cameras: CameraManager = context.getSystemService(CameraManager::class.java)
    private val sensorUsesBootTime = cameras.getCameraCharacteristics(cameraId)
        .get(CameraCharacteristics.SENSOR_INFO_TIMESTAMP_SOURCE) == CameraCharacteristics.SENSOR_INFO_TIMESTAMP_SOURCE_REALTIME
    private val thread = HandlerThread("fieldcast-camera").apply { start() }
    private val handler = Handler(thread.looper)
    private val reader = ImageReader.newInstance(width, height, ImageFormat.YUV_420_888, MAX_IMAGES).apply {
        setOnImageAvailableListener(::onImageAvailable, handler)
    }

    // Touched on the camera thread only.
    private var wanted = false
    private var closing = false
    private var opening = false
    private var device: CameraDevice? = null
    private var session: CameraCaptureSession? = null
    private var sessionGeneration = 0
    private var preview: Surface? = null

    /** Opens the camera and starts capturing (and previewing). */
    fun start() {
        handler.post {
            wanted = true
            if (device == null && !opening) open()
        }
    }

    /** Stops capturing and closes the camera; [start] opens it again. */
    fun stop() {
        handler.post {
            wanted = false
            release()
        }
    }

    /**
     * Shows the camera on [surface] as well (null: no preview). Set null before the surface is
     * destroyed, e.g. from `TextureView.SurfaceTextureListener.onSurfaceTextureDestroyed`, so that
     * a live goes on with the screen off.
     */
    fun setPreview(surface: Surface?) {
        handler.post {
            preview = surface
            if (device != null && wanted) configure()
        }
    }

    /** Closes the camera and ends the camera thread. Idempotent. */
    override fun close() {
        handler.post {
            wanted = false
            closing = true
            if (!opening) release()
        }
    }

    // The app holds CAMERA; without it openCamera throws a SecurityException, reported below.
    @SuppressLint("MissingPermission")
    private fun open() {
        opening = true
        try {
            cameras.openCamera(cameraId, deviceCallback, handler)
        } catch (e: SecurityException) {
            opening = false
            onFailure(e)
        } catch (e: CameraAccessException) {
            opening = false
            onFailure(e)
        }
    }

    private val deviceCallback = object : CameraDevice.StateCallback() {
        override fun onOpened(camera: CameraDevice) {
            opening = false
            device = camera
            if (wanted) configure() else release()
        }

        override fun onDisconnected(camera: CameraDevice) {
            fail(camera, CameraAccessException(CameraAccessException.CAMERA_DISCONNECTED, "camera $cameraId was disconnected"))
        }

        override fun onError(camera: CameraDevice, error: Int) {
            fail(camera, CameraAccessException(CameraAccessException.CAMERA_ERROR, "camera $cameraId failed (error $error)"))
        }

        private fun fail(camera: CameraDevice, error: CameraAccessException) {
            opening = false
            device = camera
            release()
            onFailure(error)
        }
    }

    /** (Re)creates the capture session for the reader and the current preview. */
    private fun configure() {
        val camera = device ?: return
        session?.close()
        session = null
        val generation = ++sessionGeneration
        val targets = listOfNotNull(reader.surface, preview)
        val callback = object : CameraCaptureSession.StateCallback() {
            override fun onConfigured(configured: CameraCaptureSession) {
                if (generation != sessionGeneration || device == null) {
                    configured.close()
                    return
                }
                session = configured
                try {
                    val request = camera.createCaptureRequest(CameraDevice.TEMPLATE_RECORD)
                    targets.forEach(request::addTarget)
                    configured.setRepeatingRequest(request.build(), null, handler)
                } catch (e: CameraAccessException) {
                    onFailure(e)
                }
            }

            override fun onConfigureFailed(failed: CameraCaptureSession) {
                if (generation != sessionGeneration) return
                onFailure(CameraAccessException(CameraAccessException.CAMERA_ERROR, "camera $cameraId cannot capture ${width}x$height"))
            }
        }
        try {
            // The list form works on every supported API level (SessionConfiguration needs 28).
            @Suppress("DEPRECATION")
            camera.createCaptureSession(targets, callback, handler)
        } catch (e: CameraAccessException) {
            onFailure(e)
        }
    }

    private fun release() {
        sessionGeneration++
        session?.close()
        session = null
        device?.close()
        device = null
        if (closing) {
            reader.close()
            thread.quitSafely()
        }
    }

    private fun onImageAvailable(reader: ImageReader) {
        val image = reader.acquireLatestImage() ?: return
        image.use {
            val target = streamer ?: return
            if (!target.isTakingMedia) return
            val timestampUs = if (sensorUsesBootTime) {
                CaptureClock.fromBootTimeNs(it.timestamp)
            } else {
                CaptureClock.fromMonotonicNs(it.timestamp)
            }
            pushSafely(onFailure) { target.pushImage(it, timestampUs) }
        }
    }

    /** Finding a camera and its frame sizes. */
    companion object {
        private const val MAX_IMAGES = 3

        /** The first back-facing camera, else the first camera. Throws when the device has none. */
        fun backCameraId(context: Context): String {
            val cameras = context.getSystemService(CameraManager::class.java)
            val ids = cameras.cameraIdList
            return ids.firstOrNull {
                cameras.getCameraCharacteristics(it).get(CameraCharacteristics.LENS_FACING) == CameraCharacteristics.LENS_FACING_BACK
            } ?: ids.firstOrNull() ?: throw IllegalStateException("this device has no camera")
        }

        /**
         * The `YUV_420_888` size of [cameraId] nearest to [width] x [height]: the same aspect ratio
         * first, then the nearest pixel count.
         */
        fun closestSize(context: Context, cameraId: String, width: Int, height: Int): Size {
            val map = context.getSystemService(CameraManager::class.java).getCameraCharacteristics(cameraId)
                .get(CameraCharacteristics.SCALER_STREAM_CONFIGURATION_MAP)
                ?: throw IllegalStateException("camera $cameraId lists no output sizes")
            val sizes = map.getOutputSizes(ImageFormat.YUV_420_888)
            return sizes.minWithOrNull(
                compareBy<Size>({ it.width.toLong() * height != it.height.toLong() * width }, { abs(it.width * it.height - width * height) }),
            ) ?: throw IllegalStateException("camera $cameraId has no YUV_420_888 output")
        }
    }
}
