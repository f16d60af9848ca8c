package org.fieldcast.scenario

import android.media.MediaExtractor
import android.media.MediaFormat
import java.io.File
import java.io.IOException

/**
 * The longest gap between consecutive video frames of the recording, read on the device with
 * [MediaExtractor] from every segment the core wrote (`fieldcast-NNNNN.mp4`, fragmented MP4, so
 * that a segment cut by a kill is readable up to its last whole fragment). Gaps are measured within
 * each file, from the frames' presentation times.
 */
object RecordingGaps {
    /** Reads every segment in [dir]. */
    fun scan(dir: File): RecordingScan {
        val files = dir.listFiles()?.filter { SellerRun.SEGMENT.matches(it.name) }?.sortedBy { it.name }.orEmpty()
        var maxGap: Long? = null
        val unreadable = mutableListOf<String>()
        for (file in files) {
            val extractor = MediaExtractor()
            try {
                extractor.setDataSource(file.path)
                val track = (0 until extractor.trackCount).firstOrNull {
                    extractor.getTrackFormat(it).getString(MediaFormat.KEY_MIME)?.startsWith("video/") == true
                }
                if (track == null) {
                    unreadable += "${file.name} (no video track)"
                    continue
                }
                extractor.selectTrack(track)
                var times = LongArray(1024)
                var count = 0
                while (true) {
                    val t = extractor.sampleTime
                    if (t < 0) break
                    if (count == times.size) times = times.copyOf(count * 2)
                    times[count++] = t
                    if (!extractor.advance()) break
                }
                maxFrameGapMs(times.copyOf(count))?.let { gap -> maxGap = maxOf(maxGap ?: 0L, gap) }
            } catch (e: IOException) {
                unreadable += "${file.name} (${file.length()} bytes: ${e.message})"
            } finally {
                extractor.release()
            }
        }
        return RecordingScan(files.size, maxGap, unreadable)
    }
}
