package org.fieldcast.scenario

import java.nio.Buffer
import java.nio.ByteBuffer
import org.fieldcast.VideoPlane

/**
 * Camera frames without a camera: [DISTINCT] NV12 pictures of [width] x [height] (noise with a
 * bright bar that moves one step per frame, like the push bench's), made once, then pushed in turn
 * through the SDK's app-push API. Each frame is two planes: Y (row stride [width]) and interleaved
 * UV (row stride [width], pixel stride 2).
 */
class TestPattern(val width: Int, val height: Int) {
    init {
        require(width > 0 && height > 0 && width % 2 == 0 && height % 2 == 0) { "NV12 needs an even size, got ${width}x$height" }
    }

    // Buffer's own limit/position/flip: ByteBuffer's covariant overrides are missing on older Android.
    private val frames: List<List<VideoPlane>> = List(DISTINCT) { n ->
        val picture = picture(n)
        val y = picture.duplicate()
        (y as Buffer).limit(width * height)
        val uv = picture.duplicate()
        (uv as Buffer).position(width * height)
        listOf(VideoPlane(y.slice(), width, 1), VideoPlane(uv.slice(), width, 2))
    }

    /** The planes of frame [n] (any n; the pictures repeat every [DISTINCT] frames). */
    fun planes(n: Long): List<VideoPlane> = frames[(n % DISTINCT).toInt()]

    private fun picture(n: Int): ByteBuffer {
        val frame = ByteBuffer.allocateDirect(width * height * 3 / 2)
        val bars = maxOf(1, width / 40)
        var seed = 12_345 + n
        for (i in 0 until width * height) {
            seed = seed * 1_103_515_245 + 12_345
            val bar = (i % width) / 40 == n % bars
            frame.put(if (bar) 235.toByte() else (64 + (seed ushr 24) / 2).toByte())
        }
        while (frame.hasRemaining()) frame.put(128.toByte())
        (frame as Buffer).flip()
        return frame
    }

    /** The sizes of the scenarios' stream profiles. */
    companion object {
        /** Pictures made before they repeat. */
        const val DISTINCT = 10

        /** The frame size of a `go_live` profile (`270p`...`720p`), as the stream profile's rung. */
        fun sizeOf(profile: String): Pair<Int, Int> = when (profile) {
            "270p" -> 480 to 270
            "360p" -> 640 to 360
            "480p" -> 854 to 480
            "720p" -> 1280 to 720
            else -> throw IllegalArgumentException("profile `$profile` is not one of ${Scenario.PROFILES.joinToString()}")
        }
    }
}
