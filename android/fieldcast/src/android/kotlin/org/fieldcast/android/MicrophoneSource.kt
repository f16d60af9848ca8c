package org.fieldcast.android

import android.annotation.SuppressLint
import android.media.AudioFormat
import android.media.AudioRecord
import android.media.AudioTimestamp
import android.media.MediaRecorder
import java.nio.ByteBuffer
import java.nio.ByteOrder
import kotlin.concurrent.thread
import org.fieldcast.Streamer

/**
 * Feeds a [Streamer] from the microphone: [AudioRecord] at 48 kHz, mono, 16-bit PCM, read in
 * 20 ms chunks into a direct buffer and pushed with their capture time on the camera's clock.
 * Matches a session configured with `AudioFormat(48000u, 1u)`.
 *
 * Reading runs on the source's own thread; chunks are pushed only while the session is
 * connecting, live or reconnecting. Needs the RECORD_AUDIO permission, which the app requests.
 *
 * @param onFailure receives read errors and chunks the core refused, on the microphone thread.
 */
class MicrophoneSource(
    private val streamer: Streamer,
    private val onFailure: (Exception) -> Unit = {},
) : AutoCloseable {
    @Volatile
    private var running = false
    private var recorder: AudioRecord? = null
    private var reader: Thread? = null

    /**
     * Starts recording. Throws [SecurityException] without RECORD_AUDIO and
     * [IllegalStateException] when the microphone cannot be opened (e.g. in use by a call).
     */
    // The app holds RECORD_AUDIO; without it AudioRecord throws a SecurityException to the caller.
    @SuppressLint("MissingPermission")
    @Synchronized
    fun start() {
        if (reader != null) return
        val minBytes = AudioRecord.getMinBufferSize(SAMPLE_RATE, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_16BIT)
        val record = AudioRecord(
            MediaRecorder.AudioSource.CAMCORDER,
            SAMPLE_RATE,
            AudioFormat.CHANNEL_IN_MONO,
            AudioFormat.ENCODING_PCM_16BIT,
            maxOf(minBytes, CHUNK_BYTES * 4),
        )
        if (record.state != AudioRecord.STATE_INITIALIZED) {
            record.release()
            throw IllegalStateException("the microphone cannot be opened")
        }
        record.startRecording()
        running = true
        recorder = record
        reader = thread(name = "fieldcast-mic") { pump(record) }
    }

    /** Stops recording and waits for the reading thread; [start] records again. */
    @Synchronized
    fun stop() {
        val record = recorder ?: return
        running = false
        record.stop()
        reader?.join()
        record.release()
        recorder = null
        reader = null
    }

    /** Same as [stop]. */
    override fun close() = stop()

    private fun pump(record: AudioRecord) {
        val chunk = ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.nativeOrder())
        val stamp = AudioTimestamp()
        var framesRead = 0L
        while (running) {
            chunk.clear()
            val bytes = record.read(chunk, CHUNK_BYTES, AudioRecord.READ_BLOCKING)
            if (bytes < 0) {
                if (running) onFailure(IllegalStateException("reading the microphone failed (AudioRecord error $bytes)"))
                return
            }
            if (bytes == 0) continue
            chunk.limit(bytes)
            val timestampUs = chunkStartUs(record, stamp, framesRead, bytes / BYTES_PER_FRAME)
            framesRead += bytes / BYTES_PER_FRAME
            if (streamer.isTakingMedia) pushSafely(onFailure) { streamer.pushAudio(chunk, timestampUs) }
        }
    }

    /**
     * Boot time of the first frame of a chunk that starts at frame [first] of the recording: from
     * the recorder's own timestamp when it has one, else from now less the chunk's duration.
     */
    private fun chunkStartUs(record: AudioRecord, stamp: AudioTimestamp, first: Long, frames: Int): Long =
        if (record.getTimestamp(stamp, AudioTimestamp.TIMEBASE_BOOTTIME) == AudioRecord.SUCCESS) {
            CaptureClock.fromBootTimeNs(stamp.nanoTime + (first - stamp.framePosition) * 1_000_000_000L / SAMPLE_RATE)
        } else {
            CaptureClock.nowUs() - frames * 1_000_000L / SAMPLE_RATE
        }

    private companion object {
        const val SAMPLE_RATE = 48_000
        const val BYTES_PER_FRAME = 2
        const val CHUNK_BYTES = SAMPLE_RATE / 50 * BYTES_PER_FRAME
    }
}
