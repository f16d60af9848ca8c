package org.fieldcast.android

import android.media.Image
import java.nio.ByteBuffer
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import org.fieldcast.FieldCast
import org.fieldcast.Streamer
import org.fieldcast.ffi.FieldCastException
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.PushOutcome
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.StreamProfile
import org.fieldcast.ffi.VideoFormat
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertSame
import org.junit.Assert.assertThrows
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config

/**
 * Camera image planes becoming frames of a real session. On the JVM GStreamer initialises itself,
 * so `FieldCast.init` is not called.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34])
class ImagePlanesTest {
    private val starts = CoroutineScope(Dispatchers.IO)

    @After
    fun stopWaiting() = starts.cancel()

    @Test
    fun planesKeepTheirBuffersAndStrides() {
        val planes = cameraPlanes()

        val videoPlanes = planes.toVideoPlanes()

        assertEquals(3, videoPlanes.size)
        planes.zip(videoPlanes).forEach { (plane, videoPlane) ->
            assertSame(plane.buffer, videoPlane.buffer)
            assertEquals(plane.rowStride, videoPlane.rowStride)
            assertEquals(plane.pixelStride, videoPlane.pixelStride)
        }
    }

    @Test
    fun cameraPlanesArePushedIntoARunningSession() {
        connectingStreamer().use { streamer ->
            val outcome = streamer.pushVideoFrame(PixelFormat.YUV420_FLEXIBLE, WIDTH, HEIGHT, cameraPlanes().toVideoPlanes(), 0)

            assertEquals(PushOutcome.QUEUED, outcome)
        }
    }

    @Test
    fun planesTooShortForTheImageAreRefused() {
        connectingStreamer().use { streamer ->
            val planes = cameraPlanes(height = HEIGHT / 2).toVideoPlanes()

            assertThrows(FieldCastException.InvalidFrame::class.java) {
                streamer.pushVideoFrame(PixelFormat.YUV420_FLEXIBLE, WIDTH, HEIGHT, planes, 0)
            }
        }
    }

    /** A session with app media whose start is under way (nothing listens at its ingest). */
    private fun connectingStreamer(): Streamer {
        val format = VideoFormat(PixelFormat.YUV420_FLEXIBLE, WIDTH.toUInt(), HEIGHT.toUInt())
        val config = SessionConfig(
            ingestUrl = "rtmp://127.0.0.1:1/live/x",
            source = MediaSource.App(format, null),
            profile = StreamProfile.P270,
        )
        val streamer = FieldCast.streamer(config)
        // start() suspends until live, which this ingest never allows; undispatched, the session has
        // started when launch returns.
        starts.launch(start = CoroutineStart.UNDISPATCHED) { runCatching { streamer.start() } }
        return streamer
    }

    /**
     * The planes of a `YUV_420_888` image as cameras hand them: rows padded to [ROW_STRIDE], the
     * last row of each plane unpadded, and U and V interleaved in one buffer (pixel stride 2).
     */
    private fun cameraPlanes(height: Int = HEIGHT): Array<Image.Plane> {
        val luma = ByteBuffer.allocateDirect(ROW_STRIDE * (height - 1) + WIDTH)
        val chroma = ByteBuffer.allocateDirect(ROW_STRIDE * (height / 2 - 1) + WIDTH)
        val u = chroma.duplicate().apply { limit(capacity() - 1) }.slice()
        val v = chroma.duplicate().apply { position(1) }.slice()
        return arrayOf(CameraPlane(luma, ROW_STRIDE, 1), CameraPlane(u, ROW_STRIDE, 2), CameraPlane(v, ROW_STRIDE, 2))
    }

    private class CameraPlane(
        private val bytes: ByteBuffer,
        private val rows: Int,
        private val pixels: Int,
    ) : Image.Plane() {
        override fun getBuffer(): ByteBuffer = bytes

        override fun getRowStride(): Int = rows

        override fun getPixelStride(): Int = pixels
    }

    private companion object {
        const val WIDTH = 320
        const val HEIGHT = 180
        const val ROW_STRIDE = 384
    }
}
