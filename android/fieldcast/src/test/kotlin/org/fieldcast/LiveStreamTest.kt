package org.fieldcast

import java.net.URI
import java.util.Collections
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.fieldcast.ffi.MediaSource
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.SessionEvent
import org.fieldcast.ffi.SessionState
import org.fieldcast.ffi.StreamProfile
import org.junit.Test

/**
 * Going live from Kotlin: a real nginx-rtmp (the sandbox's ingest) receives the stream, directly
 * and over `rtmps://` behind a private CA.
 */
class LiveStreamTest {
    @Test
    fun goesLiveAndTheFlowSeesEveryStateInOrder(): Unit = runBlocking {
        Sandbox.start().use { sandbox ->
            val live = sandbox.createLiveSession()
            val config = SessionConfig(
                ingestUrl = live.publishUrl,
                source = MediaSource.TestPattern,
                profile = StreamProfile.P360,
                adaptiveBitrate = false,
            )
            val states = Collections.synchronizedList(mutableListOf<SessionState>())
            FieldCast.streamer(config).use { streamer ->
                val collecting = launch(start = CoroutineStart.UNDISPATCHED) {
                    streamer.events.collect { if (it is SessionEvent.StateChanged) states += it.to }
                }
                withTimeout(15_000) { streamer.start() }
                assertEquals(SessionState.LIVE, streamer.state.value)
                delay(3_000)
                assertNotNull(streamer.stats.value, "stats arrive every second while live")
                assertEquals(SessionState.ENDED, withTimeout(15_000) { streamer.stop() })
                withTimeout(5_000) { while (states.lastOrNull() != SessionState.ENDED) delay(20) }
                collecting.cancel()
            }
            assertEquals(
                listOf(SessionState.CONNECTING, SessionState.LIVE, SessionState.ENDING, SessionState.ENDED),
                states.toList(),
            )
            val streams = probe(sandbox.recording(live.streamKey))
            val video = streams.getValue("video")
            assertEquals("h264", video.codec)
            assertEquals(640 to 360, video.width to video.height)
            assertEquals("aac", streams.getValue("audio").codec)
            val frames = video.frames ?: 0
            check(frames in 60..150) { "about 3 s at 30 fps expected, the ingest got $frames frames" }
        }
    }

    @Test
    fun goesLiveOverRtmpsTrustingAPrivateCa(): Unit = runBlocking {
        Sandbox.start().use { sandbox ->
            val live = sandbox.createLiveSession()
            val ingest = URI(live.publishUrl)
            TestCa().use { ca ->
                TlsFront(ca, ingest.port).use { front ->
                    val config = SessionConfig(
                        ingestUrl = "rtmps://localhost:${front.port}${ingest.path}",
                        source = MediaSource.TestPattern,
                        profile = StreamProfile.P270,
                        adaptiveBitrate = false,
                        ingestCaPem = ca.caPem,
                    )
                    FieldCast.streamer(config).use { streamer ->
                        withTimeout(15_000) { streamer.start() }
                        delay(2_000)
                        assertEquals(SessionState.ENDED, withTimeout(15_000) { streamer.stop() })
                    }
                    check(front.handshakes >= 1) { "no TLS session reached the front" }
                }
            }
            val video = probe(sandbox.recording(live.streamKey)).getValue("video")
            assertEquals("h264", video.codec)
            assertEquals(480 to 270, video.width to video.height)
        }
    }
}
