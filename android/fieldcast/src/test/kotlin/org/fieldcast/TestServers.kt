package org.fieldcast

import java.io.File
import java.io.IOException
import java.io.InputStream
import java.net.InetAddress
import java.net.Socket
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.security.KeyStore
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import javax.net.ssl.KeyManagerFactory
import javax.net.ssl.SSLContext
import javax.net.ssl.SSLServerSocket
import javax.net.ssl.SSLSocket
import kotlin.concurrent.thread

/** The repository root: where `target/` and the binaries the tests start live. */
val repoRoot: File = File(System.getProperty("fieldcast.repo", ".")).absoluteFile

/**
 * The platform sandbox (API + nginx-rtmp ingest) as a child process on free loopback ports, in its
 * own data directory; stopped by its PID on [close].
 */
class Sandbox private constructor(
    private val process: Process,
    val baseUrl: String,
    val token: String,
    val dataDir: File,
) : AutoCloseable {
    private val http = HttpClient.newHttpClient()

    /** A live session on the platform: its id and where to publish. */
    data class LiveSessionInfo(val id: String, val publishUrl: String, val streamKey: String)

    /** Creates a live session (`POST /v1/live-sessions`). */
    fun createLiveSession(title: String = "kotlin test"): LiveSessionInfo {
        val body = request("POST", "/v1/live-sessions", """{"title":"$title"}""")
        return LiveSessionInfo(field(body, "id"), field(body, "publish_url"), field(body, "stream_key"))
    }

    /** What the ingest recorded for a stream key. */
    fun recording(streamKey: String) = File(dataDir, "recordings/$streamKey.flv")

    /** Sends a request with the write token; returns the body, failing on a non-2xx status. */
    fun request(method: String, path: String, json: String? = null): String {
        val builder = HttpRequest.newBuilder(URI.create(baseUrl + path))
            .header("Authorization", "Bearer $token")
        if (json != null) builder.header("Content-Type", "application/json")
        builder.method(method, json?.let { HttpRequest.BodyPublishers.ofString(it) } ?: HttpRequest.BodyPublishers.noBody())
        val response = http.send(builder.build(), HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() in 200..299) { "$method $path: HTTP ${response.statusCode()} ${response.body()}" }
        return response.body()
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
        dataDir.deleteRecursively()
    }

    companion object {
        /** Starts `target/debug/fieldcast-sandbox` and waits for its banner. */
        fun start(): Sandbox {
            val binary = File(repoRoot, "target/debug/fieldcast-sandbox")
            check(binary.canExecute()) { "$binary is missing: run `cargo build --workspace` first" }
            val dataDir = Files.createTempDirectory("fieldcast-kotlin-sandbox").toFile()
            val process = ProcessBuilder(binary.path, "--port", "0", "--data-dir", dataDir.path)
                .redirectErrorStream(true)
                .start()
            // A JVM stopped by a signal still stops its sandbox (and so the sandbox's nginx).
            Runtime.getRuntime().addShutdownHook(Thread { process.destroy() })
            val lines = process.inputStream.bufferedReader()
            val banner = mutableMapOf<String, String>()
            while (true) {
                val line = lines.readLine() ?: error("the sandbox exited: ${banner}")
                if (line.startsWith("Ctrl-C")) break
                line.split(":", limit = 2).takeIf { it.size == 2 }?.let { banner[it[0].trim()] = it[1].trim() }
            }
            // Keep reading its log so that it never blocks on a full pipe; the pipe closes with it.
            Thread { runCatching { lines.forEachLine { } } }.apply { isDaemon = true }.start()
            return Sandbox(process, banner.getValue("API"), banner.getValue("token"), dataDir)
        }

        /** A string field of a flat JSON object. */
        fun field(json: String, name: String): String =
            Regex("\"$name\"\\s*:\\s*\"([^\"]*)\"").find(json)?.groupValues?.get(1)
                ?: error("no `$name` in $json")
    }
}

/**
 * A private certificate authority and a server certificate it signed for the DNS name `localhost`
 * only (a connection to `127.0.0.1` does not match it), made with the `openssl` command line in a
 * temporary directory that [close] removes.
 */
class TestCa : AutoCloseable {
    private val dir: File = Files.createTempDirectory("fieldcast-kotlin-ca").toFile()

    init {
        File(dir, "server.ext").writeText(
            """
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth
            subjectAltName = DNS:localhost
            """.trimIndent() + "\n",
        )
        val ec = arrayOf("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        openssl(
            "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=FieldCast Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )
        openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
        openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
        )
        openssl("pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key", "-out", "server.p12", "-passout", "pass:$PASSWORD")
    }

    /** The CA's certificate (PEM), to trust with `SessionConfig.ingestCaPem`. */
    val caPem: String
        get() = File(dir, "ca.pem").readText()

    /** A TLS server context that presents the `localhost` certificate. */
    fun serverContext(): SSLContext {
        val keys = KeyStore.getInstance("PKCS12")
        File(dir, "server.p12").inputStream().use { keys.load(it, PASSWORD.toCharArray()) }
        val managers = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm())
        managers.init(keys, PASSWORD.toCharArray())
        return SSLContext.getInstance("TLS").apply { init(managers.keyManagers, null, null) }
    }

    override fun close() {
        dir.deleteRecursively()
    }

    /** Runs `openssl args` in the CA's directory, failing with its output. */
    private fun openssl(vararg args: String) {
        val process = ProcessBuilder("openssl", *args).directory(dir).redirectErrorStream(true).start()
        val out = process.inputStream.readBytes()
        check(process.waitFor() == 0) { "openssl ${args.joinToString(" ")}: ${String(out)}" }
    }

    private companion object {
        const val PASSWORD = "fieldcast"
    }
}

/**
 * A TLS terminator on a free port of `127.0.0.1` presenting [ca]'s `localhost` certificate, that
 * forwards each connection's plain bytes to `127.0.0.1:[backendPort]` (an RTMP ingest), as an
 * `rtmps://` ingest behind a private CA does. [handshakes] counts the TLS sessions set up.
 */
class TlsFront(ca: TestCa, private val backendPort: Int) : AutoCloseable {
    private val loopback = InetAddress.getByName("127.0.0.1")
    private val server = ca.serverContext().serverSocketFactory.createServerSocket(0, 8, loopback) as SSLServerSocket
    private val sockets = ConcurrentHashMap.newKeySet<Socket>()
    private val completed = AtomicInteger()

    /** The port TLS clients connect to. */
    val port: Int = server.localPort

    /** TLS sessions set up so far (a publisher that refuses the certificate sets up none). */
    val handshakes: Int
        get() = completed.get()

    init {
        thread(isDaemon = true, name = "tls-front") {
            while (true) {
                val client = try {
                    server.accept() as SSLSocket
                } catch (e: IOException) {
                    break
                }
                sockets += client
                thread(isDaemon = true, name = "tls-front-connection") { serve(client) }
            }
        }
    }

    /** Sets up TLS with [client], then copies bytes both ways until either side closes. */
    private fun serve(client: SSLSocket) {
        try {
            client.startHandshake()
            completed.incrementAndGet()
            val backend = Socket(loopback, backendPort).also { sockets += it }
            thread(isDaemon = true, name = "tls-front-up") { copy(client.inputStream, backend, client) }
            copy(backend.getInputStream(), client, backend)
        } catch (e: IOException) {
            // The publisher refused the certificate, or a side closed.
        } finally {
            client.close()
            sockets -= client
        }
    }

    /** Copies [from] to [to] until the end or an error, then closes both [to] and [source]. */
    private fun copy(from: InputStream, to: Socket, source: Socket) {
        try {
            from.copyTo(to.getOutputStream(), 16 * 1024)
        } catch (e: IOException) {
            // Closed by the other direction, or reset.
        } finally {
            to.close()
            source.close()
            sockets -= to
            sockets -= source
        }
    }

    override fun close() {
        server.close()
        sockets.toList().forEach { it.close() }
    }
}

/** What ffprobe reads in a recording. */
data class StreamReport(val codec: String, val width: Int?, val height: Int?, val frames: Long?, val sampleRate: Int?)

/** Runs a command and returns its standard output, failing with its output on a non-zero exit. */
fun run(vararg command: String): ByteArray {
    val process = ProcessBuilder(*command).redirectError(ProcessBuilder.Redirect.PIPE).start()
    val out = process.inputStream.readBytes()
    val err = process.errorStream.readBytes()
    check(process.waitFor() == 0) { "${command.joinToString(" ")}: ${String(err)}" }
    return out
}

/** The video and audio streams of a media file, frames counted by decoding. */
fun probe(file: File): Map<String, StreamReport> {
    check(file.length() > 0) { "$file is empty or missing" }
    val out = String(
        run(
            "ffprobe", "-v", "error", "-count_frames", "-show_entries",
            "stream=codec_type,codec_name,width,height,nb_read_frames,sample_rate", "-of", "csv=p=0:nk=0", file.path,
        ),
    )
    return out.lines().filter { it.isNotBlank() }.associate { line ->
        val kv = line.split(",").mapNotNull { p -> p.split("=", limit = 2).takeIf { it.size == 2 } }.associate { it[0] to it[1] }
        kv.getValue("codec_type") to StreamReport(
            kv.getValue("codec_name"),
            kv["width"]?.toIntOrNull(),
            kv["height"]?.toIntOrNull(),
            kv["nb_read_frames"]?.toLongOrNull(),
            kv["sample_rate"]?.toIntOrNull(),
        )
    }
}

/** The mean R, G, B of decoded frame [index] of a recording. */
fun meanRgb(file: File, index: Long): Triple<Double, Double, Double> {
    val rgb = run(
        "ffmpeg", "-v", "error", "-i", file.path, "-vf", "select=eq(n\\,$index)", "-frames:v", "1",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    )
    check(rgb.isNotEmpty()) { "no frame $index in $file" }
    val n = rgb.size / 3
    var r = 0.0
    var g = 0.0
    var b = 0.0
    for (i in 0 until n) {
        r += rgb[3 * i].toInt() and 0xff
        g += rgb[3 * i + 1].toInt() and 0xff
        b += rgb[3 * i + 2].toInt() and 0xff
    }
    return Triple(r / n, g / n, b / n)
}

/** This process's resident set size in KiB, from /proc/self/status. */
fun rssKib(): Long =
    File("/proc/self/status").readLines().first { it.startsWith("VmRSS:") }.split(Regex("\\s+"))[1].toLong()
