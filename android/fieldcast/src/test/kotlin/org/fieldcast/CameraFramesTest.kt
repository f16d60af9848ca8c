package org.fieldcast

import java.nio.ByteBuffer
import kotlin.math.abs
import kotlin.math.roundToInt
import kotlin.math.sqrt
import kotlin.test.assertEquals
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.fieldcast.ffi.AudioFormat
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.PushOutcome
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.SessionState
import org.fieldcast.ffi.StreamProfile
import org.fieldcast.ffi.VideoFormat
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test

/** Solid-colour frames laid out as cameras hand them, each in direct ByteBuffers. */
object CameraFrames {
    const val PAD = 64

    /** BT.601 limited-range Y, U, V of an RGB colour (what players assume without metadata). */
    fun yuv(rgb: Triple<Int, Int, Int>): Triple<Int, Int, Int> {
        val (r, g, b) = Triple(rgb.first.toDouble(), rgb.second.toDouble(), rgb.third.toDouble())
        return Triple(
            (16 + 0.257 * r + 0.504 * g + 0.098 * b).roundToInt(),
            (128 - 0.148 * r - 0.291 * g + 0.439 * b).roundToInt(),
            (128 + 0.439 * r - 0.368 * g - 0.071 * b).roundToInt(),
        )
    }

    /** [rows] rows of [fill] repeated to [row] bytes, padded to [stride] except the last row. */
    fun plane(row: Int, rows: Int, stride: Int, fill: ByteArray): ByteBuffer {
        val buffer = ByteBuffer.allocateDirect((rows - 1) * stride + row)
        for (r in 0 until rows) {
            for (i in 0 until row) buffer.put(fill[i % fill.size])
            if (r < rows - 1) repeat(stride - row) { buffer.put(0xEE.toByte()) }
        }
        return buffer.flip()
    }

    /** One frame of [format] at [w] x [h] in [rgb], with padded strides and unpadded last rows. */
    fun solid(format: PixelFormat, w: Int, h: Int, rgb: Triple<Int, Int, Int>): List<VideoPlane> {
        val (y, u, v) = yuv(rgb)
        val stride = w + PAD
        val luma = VideoPlane(plane(w, h, stride, byteArrayOf(y.toByte())), stride, 1)
        return when (format) {
            PixelFormat.YUV420_FLEXIBLE -> {
                // Chroma pixel stride 2: U and V are views into one interleaved VU buffer, as
                // Android's camera hands YUV_420_888 (NV21 memory).
                val vu = plane(w, h / 2, stride, byteArrayOf(v.toByte(), u.toByte()))
                val uView = vu.duplicate().position(1).slice()
                val vView = vu.duplicate().limit(vu.limit() - 1).slice()
                listOf(luma, VideoPlane(uView, stride, 2), VideoPlane(vView, stride, 2))
            }
            PixelFormat.NV21 -> listOf(luma, VideoPlane(plane(w, h / 2, stride, byteArrayOf(v.toByte(), u.toByte())), stride, 2))
            PixelFormat.BGRA -> {
                val s = w * 4 + PAD
                val px = byteArrayOf(rgb.third.toByte(), rgb.second.toByte(), rgb.first.toByte(), 0xFF.toByte())
                listOf(VideoPlane(plane(w * 4, h, s, px), s, 4))
            }
            else -> error("no solid frame for $format in this test")
        }
    }
}

/** Frames pushed from Kotlin arrive whole: N (±1) frames of the pushed colour, per camera format. */
class CameraFramesTest {
    companion object {
        private lateinit var sandbox: Sandbox

        @BeforeClass @JvmStatic
        fun startSandbox() {
            sandbox = Sandbox.start()
        }

        @AfterClass @JvmStatic
        fun stopSandbox() = sandbox.close()
    }

    private fun pushSolidFrames(format: PixelFormat, frames: Int, rgb: Triple<Int, Int, Int>) = runBlocking {
        val (w, h) = 320 to 180
        val live = sandbox.createLiveSession(format.name)
        val config = SessionConfig(
            ingestUrl = live.publishUrl,
            source = MediaSource.App(VideoFormat(format, w.toUInt(), h.toUInt()), AudioFormat(48_000u, 1u)),
            profile = StreamProfile.P360,
            adaptiveBitrate = false,
        )
        val planes = CameraFrames.solid(format, w, h, rgb)
        val tone = ByteBuffer.allocateDirect(48_000 / 30 * 2)
        FieldCast.streamer(config).use { streamer ->
            streamer.start(awaitLive = false)
            val startNs = System.nanoTime()
            for (i in 0 until frames) {
                val ts = i * 1_000_000L / 30
                assertEquals(PushOutcome.QUEUED, streamer.pushVideoFrame(format, w, h, planes, ts), "frame $i")
                streamer.pushAudio(tone.duplicate(), ts)
                val next = startNs + (i + 1) * 1_000_000_000L / 30
                val wait = (next - System.nanoTime()) / 1_000_000
                if (wait > 0) Thread.sleep(wait)
            }
            check(streamer.state.value == SessionState.LIVE) { "not live after $frames frames: ${streamer.state.value}" }
            assertEquals(SessionState.ENDED, withTimeout(15_000) { streamer.stop() })
            assertEquals(0UL, streamer.stats.value?.droppedFrames ?: 0UL, "no frame dropped")
        }
        val file = sandbox.recording(live.streamKey)
        val video = probe(file).getValue("video")
        assertEquals(640 to 360, video.width to video.height)
        val got = video.frames ?: 0
        check(abs(got - frames) <= 1) { "pushed $frames $format frames, the ingest got $got" }
        val mean = meanRgb(file, frames / 2L)
        val dist = sqrt(
            (mean.first - rgb.first).let { it * it } + (mean.second - rgb.second).let { it * it } +
                (mean.third - rgb.third).let { it * it },
        )
        check(dist < 25) { "$format decoded as $mean, pushed $rgb" }
    }

    @Test
    fun yuv420888WithInterleavedChromaArrivesWhole() = pushSolidFrames(PixelFormat.YUV420_FLEXIBLE, 60, Triple(220, 140, 20))

    @Test
    fun nv21FramesArriveWhole() = pushSolidFrames(PixelFormat.NV21, 60, Triple(120, 40, 160))

    @Test
    fun bgraFramesArriveWhole() = pushSolidFrames(PixelFormat.BGRA, 60, Triple(250, 200, 30))
}
