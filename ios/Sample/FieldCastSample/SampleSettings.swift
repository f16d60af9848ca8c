import Foundation

/// Where the sample streams and syncs, from the launch arguments (`-ingest rtmp://...`, `-api`,
/// `-token`, `-session`, read through `UserDefaults`' argument domain). The defaults suit the
/// sandbox on the development Mac, which the simulator reaches on 127.0.0.1.
struct SampleSettings {
    /// The RTMP ingest URL, with its stream key.
    let ingestUrl: String
    /// The platform API root.
    let apiUrl: String
    /// The platform token.
    let token: String
    /// The platform's live session the sales and pins belong to.
    let platformSessionId: String

    /// The settings of this launch, each missing argument taking its default.
    static func fromLaunchArguments(_ defaults: UserDefaults = .standard) -> SampleSettings {
        SampleSettings(
            ingestUrl: defaults.string(forKey: "ingest") ?? "rtmp://127.0.0.1:1935/live/farm",
            apiUrl: defaults.string(forKey: "api") ?? "http://127.0.0.1:8080",
            token: defaults.string(forKey: "token") ?? "sandbox-token",
            platformSessionId: defaults.string(forKey: "session") ?? "farm"
        )
    }
}
