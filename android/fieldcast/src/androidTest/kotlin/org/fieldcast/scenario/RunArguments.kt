package org.fieldcast.scenario

import java.net.URI

/**
 * What a device run needs from outside, given as instrumentation arguments
 * (`am instrument -e fieldcastApi http://10.0.2.2:8080 ...`, or with Gradle
 * `-Pandroid.testInstrumentationRunnerArguments.fieldcastApi=...`).
 */
data class RunArguments(
    /** The platform sandbox's API root, as the device reaches it (`fieldcastApi`; default the emulator's host, `http://10.0.2.2:8080`). */
    val api: String,
    /** The platform's write token (`fieldcastToken`; default `sandbox-token`). */
    val token: String,
    /**
     * Where the device reaches the RTMP ingest, `HOST:PORT` (`fieldcastIngest`); null takes the
     * platform's publish URL with its host replaced by the API's host.
     */
    val ingest: String?,
    /** How the device's network is cut: `svc` (Wi-Fi and mobile data off, the default) or `airplane` (`fieldcastNetwork`). */
    val networkSwitch: String,
    /** Outages beyond the scenario's own, e.g. its network profile's (`fieldcastOutages`, `20-28,65-73`). */
    val extraOutages: List<Span>,
) {
    /**
     * The URL the app publishes to: the platform's [publishUrl] with its host and port replaced by
     * [ingest], or with its host replaced by the API's (its port kept) when [ingest] is null.
     */
    fun publishUrlOnDevice(publishUrl: String): String {
        val scheme = publishUrl.substringBefore("://", "")
        val rest = publishUrl.substringAfter("://", "")
        require(scheme.isNotEmpty() && rest.contains('/')) { "the platform's publish URL is not scheme://host/path: $publishUrl" }
        val address = rest.substringBefore('/')
        val path = rest.substringAfter('/')
        val target = ingest ?: run {
            val port = address.substringAfterLast(':', "")
            val host = URI(api).host ?: throw IllegalArgumentException("fieldcastApi has no host: $api")
            if (port.isEmpty()) host else "$host:$port"
        }
        return "$scheme://$target/$path"
    }

    /** Reading the arguments. */
    companion object {
        /** The names of the instrumentation arguments. */
        const val API = "fieldcastApi"
        const val TOKEN = "fieldcastToken"
        const val INGEST = "fieldcastIngest"
        const val NETWORK = "fieldcastNetwork"
        const val OUTAGES = "fieldcastOutages"

        /** The arguments from [get] (a Bundle's `getString`); throws [IllegalArgumentException] for a bad value. */
        fun from(get: (String) -> String?): RunArguments {
            val api = get(API)?.trim()?.trimEnd('/')?.takeIf { it.isNotEmpty() } ?: "http://10.0.2.2:8080"
            require(api.startsWith("http://") || api.startsWith("https://")) { "$API must be an http(s) URL, got $api" }
            val ingest = get(INGEST)?.trim()?.takeIf { it.isNotEmpty() }
            require(ingest == null || Regex("[^/:\\s]+:[0-9]{1,5}").matches(ingest)) { "$INGEST is HOST:PORT, got $ingest" }
            val switch = get(NETWORK)?.trim()?.takeIf { it.isNotEmpty() } ?: "svc"
            require(switch == "svc" || switch == "airplane") { "$NETWORK is svc or airplane, got $switch" }
            return RunArguments(
                api = api,
                token = get(TOKEN)?.takeIf { it.isNotEmpty() } ?: "sandbox-token",
                ingest = ingest,
                networkSwitch = switch,
                extraOutages = Timeline.parseOutages(get(OUTAGES)),
            )
        }
    }
}
