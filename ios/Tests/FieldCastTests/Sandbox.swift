import Foundation
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

/// Why the sandbox could not be used.
enum SandboxError: Error {
    case exited(String)
    case unexpected(String)
}
