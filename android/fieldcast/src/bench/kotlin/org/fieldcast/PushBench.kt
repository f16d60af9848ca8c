package org.fieldcast

import java.lang.management.ManagementFactory
import java.nio.ByteBuffer
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking
import org.fieldcast.ffi.EncoderPreference
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.PushOutcome
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.StreamProfile
import org.fieldcast.ffi.VideoFormat

private const val WIDTH = 1280
private const val HEIGHT = 720
private const val FPS = 30L
private const val DISTINCT = 30

/** Frames pushed before the measurement starts (10 s: the session is live, the JIT has compiled the push path). */
private const val WARM_UP = 300

/** Frame [n] of the pattern, byte for byte what `tests/src/bin/push_bench.rs` pushes. */
private fun pattern(n: Int): ByteBuffer {
    val frame = ByteBuffer.allocateDirect(WIDTH * HEIGHT * 3 / 2)
    var seed = 12345 + n
    for (i in 0 until WIDTH * HEIGHT) {
        seed = seed * 1_103_515_245 + 12_345
        val bar = (i % WIDTH) / 40 == n % (WIDTH / 40)
        frame.put(if (bar) 235.toByte() else (64 + (seed ushr 24) / 2).toByte())
    }
    while (frame.hasRemaining()) frame.put(128.toByte())
    return frame.flip()
}

/** CPU seconds this JVM has used, its own threads (JIT, GC) included. */
private fun cpuSeconds(): Double =
    (ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean).processCpuTime / 1e9

/** CPU seconds used so far by HotSpot's JIT compiler threads (`C1/C2 CompilerThread`), from /proc. */
private fun jitCpuSeconds(): Double {
    val ticksPerSecond = 100.0 // USER_HZ on Linux
    return java.io.File("/proc/self/task").listFiles().orEmpty().sumOf { task ->
        val stat = runCatching { java.io.File(task, "stat").readText() }.getOrNull() ?: return@sumOf 0.0
        val name = stat.substringAfter('(').substringBeforeLast(')')
        if (!name.contains("CompilerThre")) return@sumOf 0.0
        val fields = stat.substringAfterLast(')').trim().split(' ')
        (fields[11].toLong() + fields[12].toLong()) / ticksPerSecond
    }
}

/**
 * App-push benchmark, the Kotlin side: 720p30 NV12 frames pushed through the SDK layer
 * ([Streamer.pushVideoFrame]) in real time; after 10 s of warm-up it measures FRAMES more frames and
 * prints the same JSON line as the Rust side.
 * Arguments: the RTMP URL and the number of measured frames (default 1800: one minute).
 */
fun main(args: Array<String>) = runBlocking {
    val url = args.getOrNull(0) ?: run {
        System.err.println("usage: PushBench RTMP_URL [FRAMES]")
        exitProcess(2)
    }
    val frames = args.getOrNull(1)?.toInt() ?: 1800
    val pictures = List(DISTINCT) { pattern(it) }
    val planes = pictures.map { p ->
        listOf(
            VideoPlane(p.duplicate().limit(WIDTH * HEIGHT).slice(), WIDTH, 1),
            VideoPlane(p.duplicate().position(WIDTH * HEIGHT).slice(), WIDTH, 2),
        )
    }
    val config = SessionConfig(
        ingestUrl = url,
        source = MediaSource.App(VideoFormat(PixelFormat.NV12, WIDTH.toUInt(), HEIGHT.toUInt()), null),
        profile = StreamProfile.P720,
        adaptiveBitrate = false,
        // The phone library has no x264: both sides of the bench encode with openh264.
        encoder = EncoderPreference.OPEN_H264,
    )
    FieldCast.streamer(config).use { streamer ->
        streamer.start(awaitLive = false)
        var cpuStart = cpuSeconds()
        var jitStart = jitCpuSeconds()
        val pushNs = LongArray(frames)
        var dropped = 0
        val start = System.nanoTime()
        for (i in 0 until WARM_UP + frames) {
            if (i == WARM_UP) {
                cpuStart = cpuSeconds()
                jitStart = jitCpuSeconds()
            }
            val t = System.nanoTime()
            val outcome = streamer.pushVideoFrame(PixelFormat.NV12, WIDTH, HEIGHT, planes[i % DISTINCT], i * 1_000_000L / FPS)
            if (i >= WARM_UP) pushNs[i - WARM_UP] = System.nanoTime() - t
            if (outcome == PushOutcome.DROPPED) dropped++
            val wait = (start + (i + 1) * 1_000_000_000L / FPS - System.nanoTime()) / 1_000_000
            if (wait > 0) Thread.sleep(wait)
        }
        streamer.stop()
        val cpu = cpuSeconds() - cpuStart
        val jit = jitCpuSeconds() - jitStart
        pushNs.sort()
        fun pct(p: Double) = pushNs[((frames - 1) * p).toInt()] / 1000.0
        println(
            "{\"side\":\"kotlin\",\"cpu_s\":%.3f,\"jit_cpu_s\":%.3f,\"media_s\":%.3f,\"push_p50_us\":%.1f,\"push_p99_us\":%.1f,\"frames\":%d,\"dropped\":%d}"
                .format(cpu, jit, frames.toDouble() / FPS, pct(0.5), pct(0.99), frames, dropped),
        )
    }
}
