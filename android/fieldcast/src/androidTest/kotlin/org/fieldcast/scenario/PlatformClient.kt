package org.fieldcast.scenario

import java.io.IOException
import java.net.HttpURLConnection
import java.net.URL
import java.net.URLEncoder
import org.json.JSONArray
import org.json.JSONException
import org.json.JSONObject
import org.json.JSONTokener

/** A live session created on the platform: its [id] and where the platform's ingest takes it ([publishUrl], secret). */
data class PlatformLiveSession(val id: String, val publishUrl: String)

/**
 * The few platform calls a device run makes outside the SDK (as the desktop lab's
 * `qa/src/platform.rs`): live sessions, the stock, and reading back the sales the platform holds.
 * Blocking, with a bearer token; throws [IOException] when the platform cannot be reached or
 * answers with an error.
 */
class PlatformClient(private val base: String, private val token: String) {
    /** Whether the platform answers `/v1/health` within [timeoutMs]. */
    fun healthy(timeoutMs: Int): Boolean = try {
        call("GET", "/v1/health", null, timeoutMs)
        true
    } catch (e: IOException) {
        false
    }

    /** Creates a live session titled [title]. */
    fun createLiveSession(title: String): PlatformLiveSession {
        val body = call("POST", "/v1/live-sessions", JSONObject().put("title", title)) as JSONObject
        return PlatformLiveSession(body.getString("id"), body.getString("publish_url"))
    }

    /** Marks a live session ended. */
    fun endLiveSession(id: String) {
        call("POST", "/v1/live-sessions/${enc(id)}/end", null)
    }

    /** The ids of the products the platform sells. */
    fun productIds(): List<String> {
        val products = call("GET", "/v1/products", null) as JSONArray
        return (0 until products.length()).map { products.getJSONObject(it).getString("id") }
    }

    /** Sets the stock of every product to [stock] (a market day that does not run out); returns how many products. */
    fun restock(stock: Long): Int {
        val products = call("GET", "/v1/products", null) as JSONArray
        for (i in 0 until products.length()) {
            val product = products.getJSONObject(i)
            product.put("stock", stock)
            call("PUT", "/v1/products/${enc(product.getString("id"))}", product)
        }
        return products.length()
    }

    /** The ids of the sales the platform holds for a live session, in its order, copies included. */
    fun saleIds(sessionId: String): List<String> {
        val sales = call("GET", "/v1/sales?session_id=${enc(sessionId)}", null) as JSONArray
        return (0 until sales.length()).map { sales.getJSONObject(it).getString("id") }
    }

    private fun call(method: String, path: String, body: JSONObject?, timeoutMs: Int = TIMEOUT_MS): Any {
        val connection = URL(base + path).openConnection() as HttpURLConnection
        try {
            connection.requestMethod = method
            connection.connectTimeout = timeoutMs
            connection.readTimeout = timeoutMs
            connection.setRequestProperty("Authorization", "Bearer $token")
            connection.setRequestProperty("Accept", "application/json")
            if (body != null) {
                connection.doOutput = true
                connection.setRequestProperty("Content-Type", "application/json")
                connection.outputStream.use { it.write(body.toString().toByteArray()) }
            }
            val status = connection.responseCode
            val stream = if (status in 200..299) connection.inputStream else connection.errorStream
            val text = stream?.use { it.readBytes().decodeToString() }.orEmpty()
            if (status !in 200..299) throw IOException("$method $path: the platform answered $status: $text")
            if (text.isBlank()) return JSONObject()
            return try {
                JSONTokener(text).nextValue()
            } catch (e: JSONException) {
                throw IOException("$method $path: the platform answered $status without JSON: $text")
            }
        } finally {
            connection.disconnect()
        }
    }

    private fun enc(value: String) = URLEncoder.encode(value, "UTF-8")

    private companion object {
        const val TIMEOUT_MS = 10_000
    }
}
