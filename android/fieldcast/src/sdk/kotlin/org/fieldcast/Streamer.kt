package org.fieldcast

import java.nio.ByteBuffer
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.withContext
import org.fieldcast.ffi.FieldCastException
import org.fieldcast.ffi.FrameInfo
import org.fieldcast.ffi.IngestCause
import org.fieldcast.ffi.LiveSession
import org.fieldcast.ffi.LiveStats
import org.fieldcast.ffi.Pin
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.PlaneLayout
import org.fieldcast.ffi.PushOutcome
import org.fieldcast.ffi.SessionConfig
import org.fieldcast.ffi.SessionEvent
import org.fieldcast.ffi.SessionListener
import org.fieldcast.ffi.SessionState

/**
 * One plane of a camera frame: a direct [ByteBuffer] (from its position to its limit) with its
 * row stride and pixel stride, as `android.media.Image.Plane` and `CVPixelBuffer` describe it.
 */
class VideoPlane(val buffer: ByteBuffer, val rowStride: Int, val pixelStride: Int)

/**
 * One live stream. State, statistics and events are flows; [start] and [stop] suspend until the
 * stream is live or has ended. Media pushes never block: they return [PushOutcome.DROPPED] when the
 * encoder is behind.
 *
 * Threading: every method may be called from any thread. Events are produced on a FieldCast thread
 * and reach collectors on the collector's own dispatcher; nothing calls into the app while holding
 * a FieldCast lock. After [close] returns no event is delivered.
 */
class Streamer internal constructor(config: SessionConfig) : AutoCloseable {
    private val session = LiveSession(config)
    private val guard = Closing("streamer")
    private val _state = MutableStateFlow(SessionState.IDLE)
    private val _stats = MutableStateFlow<LiveStats?>(null)
    private val subscriptions = Subscriptions(guard)
    private val subscription = session.subscribe(object : SessionListener {
        override fun onEvent(event: SessionEvent) {
            when (event) {
                is SessionEvent.StateChanged -> _state.value = event.to
                is SessionEvent.Stats -> _stats.value = event.stats
                else -> {}
            }
        }
    })

    /** The session's state: IDLE, CONNECTING, LIVE, RECONNECTING, ENDING, ENDED or FAILED. */
    val state: StateFlow<SessionState> = _state.asStateFlow()

    /** The latest one-second statistics (null before the first second). */
    val stats: StateFlow<LiveStats?> = _stats.asStateFlow()

    /**
     * Every event from the moment of collection: state changes, stats, failures, adaptations.
     * Each collection has its own subscription to the session, made before the collecting
     * coroutine first suspends (launch it with `CoroutineStart.UNDISPATCHED` before [start] to see
     * CONNECTING), and cancelled with the collection or by [close] (which completes the flow).
     */
    val events: Flow<SessionEvent> = subscriptions.flow { deliver ->
        guard.use {
            session.subscribe(object : SessionListener {
                override fun onEvent(event: SessionEvent) = deliver(event)
            })
        }
    }

    /**
     * Calls [listener] with every event from now on, on a FieldCast thread, until the returned
     * handle is closed or this streamer is; once either close returns, [listener] is not called
     * again. For Java callers and code without coroutines; [events] is the same as a flow.
     */
    @Throws(FieldCastException::class)
    fun subscribe(listener: (SessionEvent) -> Unit): AutoCloseable {
        val own = guard.use {
            session.subscribe(object : SessionListener {
                override fun onEvent(event: SessionEvent) = listener(event)
            })
        }
        subscriptions.add(own)
        return AutoCloseable { subscriptions.release(own) }
    }

    /**
     * Starts capturing, encoding and connecting and, with [awaitLive] (the default), suspends until
     * the stream is live. Throws the failure ([FieldCastException.Ingest] for an unreachable ingest
     * or a rejected key, its `ingestCause` saying what failed) if the session fails first. Cancel
     * the calling coroutine (or use `withTimeout`) to stop waiting; the session goes on connecting
     * until [stop].
     */
    @Throws(FieldCastException::class)
    suspend fun start(awaitLive: Boolean = true) {
        guard.use { session.start() }
        if (!awaitLive) return
        val reached = state.first { it == SessionState.LIVE || it.isTerminal() }
        if (reached == SessionState.FAILED) {
            val error = withContext(Dispatchers.IO) { runCatching { guard.use { session.wait(0u) } }.exceptionOrNull() }
            throw error as? FieldCastException ?: FieldCastException.InvalidState(reached, "the session failed")
        }
        if (reached != SessionState.LIVE) {
            throw FieldCastException.InvalidState(reached, "the session ended before it was live")
        }
    }

    /**
     * Ends the stream cleanly (end-of-stream reaches the ingest and the recording) and suspends
     * until it has: returns ENDED, or FAILED for a session that had failed (see [events]).
     */
    @Throws(FieldCastException::class)
    suspend fun stop(): SessionState {
        guard.use { session.stop() }
        return awaitEnd()
    }

    /**
     * Suspends until the session is ENDED or FAILED: blocks an IO thread in short native waits, so
     * that cancelling the caller (`withTimeout`) takes effect within a quarter of a second.
     */
    private suspend fun awaitEnd(): SessionState = withContext(Dispatchers.IO) {
        var reached: SessionState
        do {
            ensureActive()
            reached = try {
                guard.use { session.wait(250u) }
            } catch (e: FieldCastException) {
                if (e is FieldCastException.Closed) throw e
                SessionState.FAILED
            }
        } while (!reached.isTerminal())
        reached
    }

    /**
     * Pushes one camera frame of [format] at [width] x [height]; its [planes] (in the format's
     * order) are borrowed for the call and copied once. Throws [FieldCastException.InvalidFrame]
     * when the planes do not fit the declared size and strides.
     */
    @Throws(FieldCastException::class)
    fun pushVideoFrame(
        format: PixelFormat,
        width: Int,
        height: Int,
        planes: List<VideoPlane>,
        timestampUs: Long? = null,
    ): PushOutcome {
        if (planes.size > 3 || width < 0 || height < 0 || planes.any { it.rowStride < 0 || it.pixelStride < 0 }) {
            throw FieldCastException.InvalidFrame(
                "a frame has 1 to 3 planes and no negative size or stride (got ${planes.size} planes, ${width}x$height)",
            )
        }
        val info = FrameInfo(
            format, width.toUInt(), height.toUInt(),
            planes.map { PlaneLayout(it.rowStride.toUInt(), it.pixelStride.toUInt()) },
            timestampUs?.toULong(),
        )
        val buffers = List(3) { i -> planes.getOrNull(i)?.let { direct(it.buffer) } ?: EMPTY }
        return guard.use { session.pushVideoFrame(info, buffers[0], buffers[1], buffers[2]) }
    }

    /** Pushes interleaved 16-bit little-endian PCM captured at [timestampUs] (the video's clock). */
    @Throws(FieldCastException::class)
    fun pushAudio(pcm: ByteBuffer, timestampUs: Long? = null): PushOutcome =
        guard.use { session.pushAudio(direct(pcm), timestampUs?.toULong()) }

    /** Tells the session whether the device has a network; its return cuts a reconnect wait short. */
    fun setNetworkAvailable(available: Boolean) {
        if (!guard.isClosed) guard.use { session.setNetworkAvailable(available) }
    }

    /** Lets this streamer pin products of [commerce] under the platform's live session id. */
    @Throws(FieldCastException::class)
    fun linkCommerce(commerce: Commerce, platformSessionId: String) =
        guard.use { session.linkCommerce(commerce.store, platformSessionId) }

    /** Pins a product now: stored, queued for the platform, and carried in the video. */
    @Throws(FieldCastException::class)
    suspend fun pin(productId: String): Pin = withContext(Dispatchers.IO) { guard.use { session.pinProduct(productId) } }

    /** Ends a pin now; the pin becomes a chapter of the replay. */
    @Throws(FieldCastException::class)
    suspend fun unpin(pinId: String): Pin = withContext(Dispatchers.IO) { guard.use { session.unpinProduct(pinId) } }

    /** The H.264 encoder in use. */
    val encoder: String
        get() = guard.use { session.encoder() }

    /**
     * Releases the session. A running stream is ended first (this waits for its drain, at most
     * about 10 s: call [stop] before to keep the caller's thread free). Idempotent; no event is
     * delivered after it returns.
     */
    override fun close() {
        if (!guard.close()) return
        subscription.cancel()
        subscription.destroy()
        subscriptions.releaseAll()
        session.destroy()
    }

    private companion object {
        val EMPTY: ByteBuffer = ByteBuffer.allocateDirect(0)

        /** The buffer from its position, as the native side reads it (it must be direct). */
        fun direct(buffer: ByteBuffer): ByteBuffer {
            if (!buffer.isDirect) {
                throw FieldCastException.InvalidFrame(
                    "media buffers must be direct ByteBuffers (ByteBuffer.allocateDirect, Image.Plane.buffer)",
                )
            }
            return if (buffer.position() == 0) buffer else buffer.slice()
        }
    }
}

/** True for ENDED and FAILED, after which nothing changes. */
fun SessionState.isTerminal(): Boolean = this == SessionState.ENDED || this == SessionState.FAILED

/** True for the causes of a failed TLS session with an `rtmps://` ingest (the `TLS_` ones). */
fun IngestCause.isTls(): Boolean = when (this) {
    IngestCause.TLS_NAME_MISMATCH, IngestCause.TLS_UNKNOWN_ISSUER, IngestCause.TLS_EXPIRED, IngestCause.TLS_OTHER -> true
    else -> false
}
