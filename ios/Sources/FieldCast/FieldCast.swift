import FieldCastGStreamer

/// The entry point of the FieldCast SDK: a `Streamer` goes live, a `Commerce` keeps the catalog,
/// sales and pins on the phone and syncs them to the platform exactly once.
///
/// GStreamer is initialised (`gst_ios_init`) once, before the core is first used: by
/// `initialize()`, or by the first `streamer(_:)` or `commerce(databasePath:sync:)`.
public enum FieldCast {
    private static let gstreamer: Void = gst_ios_init()

    /// Initialises GStreamer for FieldCast (idempotent and thread-safe), e.g. at app launch so that
    /// the first live does not pay for it.
    public static func initialize() {
        _ = gstreamer
    }

    /// The version of the native library.
    public static var version: String {
        initialize()
        return fieldcastVersion()
    }

    /// A live session for `config`, not started yet. Throws at once for a bad configuration
    /// (`.InvalidConfig`, `.InvalidUrl`) or a missing component (`.MissingComponent`).
    public static func streamer(_ config: SessionConfig) throws -> Streamer {
        initialize()
        return try Streamer(config: config)
    }

    /// The store at `databasePath` (created if missing) and, with `sync`, the engine that sends its
    /// outbox to the platform.
    public static func commerce(databasePath: String, sync: SyncConfig? = nil) throws -> Commerce {
        initialize()
        return try Commerce(databasePath: databasePath, sync: sync)
    }
}
