import Foundation
import Network
import XCTest

/// The platform sandbox (API + nginx-rtmp ingest) the tests talk to: the one given by
/// `FIELDCAST_SANDBOX_API`, `FIELDCAST_SANDBOX_TOKEN` and `FIELDCAST_SANDBOX_DATA` (its data
/// directory, for the recordings), or else `target/debug/fieldcast-sandbox` of the repository
/// started on free loopback ports in a temporary directory and stopped by `close()`.
final class Sandbox {
    /// The API root, e.g. `http://127.0.0.1:PORT`.
    let baseUrl: String
    /// The write token.
    let token: String
    /// Where the ingest records, `recordings/<stream key>.flv`.
    let dataDir: URL
    private let process: Process?

    /// A live session on the platform: its id and where to publish.
    struct LiveSessionInfo {
        let id: String
        let publishUrl: String
        let streamKey: String
    }

    private init(baseUrl: String, token: String, dataDir: URL, process: Process?) {
        self.baseUrl = baseUrl
        self.token = token
        self.dataDir = dataDir
        self.process = process
    }

    /// The sandbox of the environment, or a new one.
    static func start() throws -> Sandbox {
        let env = ProcessInfo.processInfo.environment
        if let api = env["FIELDCAST_SANDBOX_API"], let token = env["FIELDCAST_SANDBOX_TOKEN"], let data = env["FIELDCAST_SANDBOX_DATA"] {
            return Sandbox(baseUrl: api, token: token, dataDir: URL(fileURLWithPath: data), process: nil)
        }
        let binary = repoRoot.appendingPathComponent("target/debug/fieldcast-sandbox")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("\(binary.path) is missing: run `cargo build --workspace`, or set FIELDCAST_SANDBOX_API/_TOKEN/_DATA")
        }
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldcast-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
        let process = Process()
        let output = Pipe()
        process.executableURL = binary
        process.arguments = ["--port", "0", "--data-dir", dataDir.path]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        var banner: [String: String] = [:]
        var pending = ""
        while !pending.contains("Ctrl-C") {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw SandboxError.exited(pending) }
            pending += String(decoding: chunk, as: UTF8.self)
        }
        for line in pending.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { banner[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        // Keep reading its log so that it never blocks on a full pipe.
        output.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
        guard let api = banner["API"], let token = banner["token"] else { throw SandboxError.exited(pending) }
        return Sandbox(baseUrl: api, token: token, dataDir: dataDir, process: process)
    }

    /// Creates a live session (`POST /v1/live-sessions`).
    func createLiveSession(title: String = "swift test") async throws -> LiveSessionInfo {
        let body = try await request("POST", "/v1/live-sessions", json: ["title": title])
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
        guard let id = object["id"] as? String, let url = object["publish_url"] as? String, let key = object["stream_key"] as? String else {
            throw SandboxError.unexpected(body)
        }
        return LiveSessionInfo(id: id, publishUrl: url, streamKey: key)
    }

    /// What the ingest recorded for a stream key.
    func recording(_ streamKey: String) -> URL {
        dataDir.appendingPathComponent("recordings/\(streamKey).flv")
    }

    /// Sends a request with the write token; returns the body, failing on a non-2xx status.
    func request(_ method: String, _ path: String, json: [String: Any]? = nil) async throws -> String {
        guard let url = URL(string: baseUrl + path) else { throw SandboxError.unexpected(path) }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let json {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let body = String(decoding: data, as: UTF8.self)
        guard let status = (response as? HTTPURLResponse)?.statusCode, (200..<300).contains(status) else {
            throw SandboxError.unexpected("\(method) \(path): \(body)")
        }
        return body
    }

    /// The sales count of `GET /v1/_sandbox/stats`.
    func salesCount() async throws -> Int {
        let body = try await request("GET", "/v1/_sandbox/stats")
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return object?["sales"] as? Int ?? -1
    }

    /// Stops a sandbox this test started and removes its data.
    func close() {
        guard let process else { return }
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dataDir)
    }

    /// The repository: FIELDCAST_REPO, or three levels above this file (ios/Tests/FieldCastTests).
    static var repoRoot: URL {
        if let repo = ProcessInfo.processInfo.environment["FIELDCAST_REPO"] { return URL(fileURLWithPath: repo) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }
}

/// A private certificate authority and a server certificate it signed for the DNS name `localhost`
/// only (a connection to `127.0.0.1` does not match it), made with the `openssl` command line in a
/// temporary directory that `close()` removes.
final class TestCa {
    /// Where the keys and certificates are.
    let dir: URL
    /// The CA's certificate (PEM), to trust with `SessionConfig.ingestCaPem`.
    let caPem: String

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldcast-swift-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Configuration files rather than -addext, which LibreSSL (macOS's openssl) may lack.
        try """
        [req]
        distinguished_name = subject
        prompt = no

        [subject]
        CN = FieldCast Test CA

        [ca]
        basicConstraints = critical, CA:TRUE
        keyUsage = critical, keyCertSign, cRLSign
        """.write(to: dir.appendingPathComponent("ca.cnf"), atomically: true, encoding: .utf8)
        try """
        [req]
        distinguished_name = subject
        prompt = no

        [subject]
        CN = localhost

        [server]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature, keyEncipherment
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:localhost
        """.write(to: dir.appendingPathComponent("server.cnf"), atomically: true, encoding: .utf8)
        try openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                    "-config", "ca.cnf", "-extensions", "ca")
        try openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-config", "server.cnf")
        try openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                    "-out", "server.pem", "-days", "2", "-extfile", "server.cnf", "-extensions", "server")
        caPem = try String(contentsOf: dir.appendingPathComponent("ca.pem"), encoding: .utf8)
    }

    /// Removes the keys and certificates.
    func close() {
        try? FileManager.default.removeItem(at: dir)
    }

    /// Runs `openssl arguments` in `dir`, throwing its output when it fails.
    private func openssl(_ arguments: String...) throws {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = dir
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let log = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SandboxError.unexpected("openssl \(arguments.joined(separator: " ")): \(String(decoding: log, as: UTF8.self))")
        }
    }
}

/// stunnel (`brew install stunnel`) terminating TLS on a free port of `127.0.0.1` with a `TestCa`'s
/// `localhost` certificate and forwarding the plain bytes to `127.0.0.1:backendPort` (an RTMP
/// ingest), as an `rtmps://` ingest behind a private CA does. Stopped by `close()`.
final class TlsFront {
    /// The port TLS clients connect to.
    let port: UInt16
    private let process: Process
    private let dir: URL

    private init(port: UInt16, process: Process, dir: URL) {
        self.port = port
        self.process = process
        self.dir = dir
    }

    /// Starts stunnel in front of `backendPort` and returns once it accepts connections; skips the
    /// test when stunnel is not installed.
    static func start(ca: TestCa, backendPort: UInt16) async throws -> TlsFront {
        var lastLog = ""
        // The port is free when asked for, but another process may take it before stunnel binds.
        for _ in 0..<3 {
            let port = try await freePort()
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldcast-swift-tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try """
            foreground = yes
            pid = \(dir.path)/stunnel.pid
            output = \(dir.path)/stunnel.log
            debug = info
            syslog = no

            [rtmps]
            accept = 127.0.0.1:\(port)
            connect = 127.0.0.1:\(backendPort)
            cert = \(ca.dir.path)/server.pem
            key = \(ca.dir.path)/server.key
            sslVersionMin = TLSv1.2
            """.write(to: dir.appendingPathComponent("stunnel.conf"), atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["stunnel", dir.appendingPathComponent("stunnel.conf").path]
            try process.run()
            let front = TlsFront(port: port, process: process, dir: dir)
            var waited = 0
            while process.isRunning, !front.log.contains("Accepting new connections"), waited < 200 {
                try await Task.sleep(nanoseconds: 50_000_000)
                waited += 1
            }
            if front.log.contains("Accepting new connections") { return front }
            lastLog = front.log
            front.close()
            if process.terminationStatus == 127 { throw XCTSkip("stunnel is not installed: brew install stunnel") }
        }
        throw SandboxError.unexpected("stunnel did not start listening: \(lastLog)")
    }

    /// TLS sessions set up so far (a publisher that refuses the certificate sets up none): stunnel
    /// logs `TLS accepted: ...` (`SSL accepted: ...` before 5.57) for each.
    var handshakes: Int {
        log.components(separatedBy: " accepted: ").count - 1
    }

    /// stunnel's log.
    var log: String {
        (try? String(contentsOf: dir.appendingPathComponent("stunnel.log"), encoding: .utf8)) ?? ""
    }

    /// Stops stunnel and removes its files.
    func close() {
        if process.isRunning {
            process.terminate()
        }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dir)
    }

    /// A free TCP port: a listener's, released at once.
    private static func freePort() async throws -> UInt16 {
        let listener = try NWListener(using: .tcp, on: .any)
        listener.newConnectionHandler = { $0.cancel() }
        listener.start(queue: .global())
        defer { listener.cancel() }
        while listener.port == nil { try await Task.sleep(nanoseconds: 10_000_000) }
        return try XCTUnwrap(listener.port?.rawValue)
    }
}

/// Why the sandbox could not be used.
enum SandboxError: Error {
    case exited(String)
    case unexpected(String)
}
