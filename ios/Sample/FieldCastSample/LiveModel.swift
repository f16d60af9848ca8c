import AVFoundation
import FieldCast
import Foundation

/// What the farmer's screen shows and does: the shop (kept in Application Support/shop.db and
/// synced to the platform), the camera, and a live with its microphone while one runs.
@MainActor
final class LiveModel: ObservableObject {
    @Published private(set) var products: [Product] = []
    @Published private(set) var pins: [String: String] = [:]
    @Published private(set) var camera: CameraFrameSource?
    @Published private(set) var stateText = "Not live"
    @Published private(set) var bitrateText = ""
    @Published private(set) var syncBadge = ""
    @Published private(set) var errorText = ""
    @Published var showsError = false

    private let settings: SampleSettings
    private let network = NetworkMonitor()
    private var commerce: Commerce?
    private var live: Live?

    /// A running live: the session, its microphone, its network listener and the task showing it.
    private struct Live {
        let streamer: Streamer
        let microphone: MicrophoneSource
        let network: ListenerToken
        let watch: Task<Void, Never>
    }

    init(settings: SampleSettings) {
        self.settings = settings
    }

    /// True while a live runs.
    var isLive: Bool { live != nil }

    /// Opens the shop and the camera (asking for the permissions), then shows the sync queue until
    /// the screen goes away.
    func open() async {
        do {
            let folder = try FileManager.default.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            let shop = try FieldCast.commerce(
                databasePath: folder.appendingPathComponent("shop.db").path,
                sync: SyncConfig(baseUrl: settings.apiUrl, token: settings.token)
            )
            commerce = shop
            network.addListener { [shop] available in shop.setNetworkAvailable(available) }
            await loadProducts(refresh: true)
            if await AVCaptureDevice.requestAccess(for: .video) {
                camera = try CameraFrameSource(onError: { [weak self] error in Task { @MainActor in self?.show(error) } })
                camera?.start()
            } else {
                show("The camera permission is needed to go live")
            }
            _ = await AVCaptureDevice.requestAccess(for: .audio)
            for await queue in shop.queue {
                showQueue(queue)
            }
        } catch {
            show(error)
        }
    }

    /// Starts a live from the camera and the microphone.
    func goLive() {
        guard let camera, let commerce, live == nil else { return }
        do {
            let video = VideoFormat(format: camera.pixelFormat, width: UInt32(camera.width), height: UInt32(camera.height))
            let streamer = try FieldCast.streamer(SessionConfig(
                ingestUrl: settings.ingestUrl,
                source: .app(video: video, audio: AudioFormat(rate: 48_000, channels: 1))
            ))
            try streamer.linkCommerce(commerce, platformSessionId: settings.platformSessionId)
            let microphone = MicrophoneSource(streamer: streamer, onError: { [weak self] error in Task { @MainActor in self?.show(error) } })
            let listening = network.addListener { [streamer] available in streamer.setNetworkAvailable(available) }
            camera.streamer = streamer
            let watch = Task { await self.watch(streamer) }
            live = Live(streamer: streamer, microphone: microphone, network: listening, watch: watch)
            try microphone.start()
        } catch {
            show(error)
        }
    }

    /// Ends the live; the drain runs off the main actor.
    func endLive() {
        guard let ending = live else { return }
        live = nil
        ending.watch.cancel()
        ending.network.cancel()
        ending.microphone.close()
        camera?.streamer = nil
        Task.detached { ending.streamer.close() }
        pins.removeAll()
        stateText = "Not live"
        bitrateText = ""
    }

    /// Pins the product, or unpins it when pinned.
    func togglePin(_ product: Product) {
        guard let streamer = live?.streamer else { return }
        Task {
            do {
                if let pinId = pins[product.id] {
                    _ = try await streamer.unpin(pinId)
                    pins[product.id] = nil
                } else {
                    pins[product.id] = try await streamer.pin(product.id).id
                }
            } catch {
                show(error)
            }
        }
    }

    /// Sells one unit, in the live's session while one runs.
    func sell(_ product: Product) {
        guard let commerce else { return }
        let sessionId = isLive ? settings.platformSessionId : nil
        Task {
            do {
                try await commerce.sell(product.id, sessionId: sessionId)
            } catch {
                show(error)
            }
            await loadProducts(refresh: false)
        }
    }

    /// Shows the live's state and statistics and starts it; cancelled by `endLive()`.
    private func watch(_ streamer: Streamer) async {
        async let stats: Void = showStats(of: streamer)
        async let states: Void = showStates(of: streamer)
        do {
            try await streamer.start()
        } catch is CancellationError {
            return
        } catch {
            show(error)
            endLive()
        }
        _ = await (stats, states)
    }

    private func showStats(of streamer: Streamer) async {
        for await latest in streamer.stats {
            guard let latest else { continue }
            bitrateText = "\(Int(latest.videoKbps + latest.audioKbps)) kbit/s, \(latest.height)p, \(latest.droppedFrames) frames dropped"
        }
    }

    private func showStates(of streamer: Streamer) async {
        for await state in streamer.state {
            stateText = "\(state)".capitalized
            if state.isTerminal { endLive() }
        }
    }

    private func showQueue(_ queue: QueueState) {
        let waiting = queue.pending + queue.inFlight
        let paused = queue.pausedReason.map { " (paused: \($0))" } ?? ""
        let refused = queue.conflicted > 0 ? ", \(queue.conflicted) refused" : ""
        syncBadge = "\(waiting) sales waiting to sync\(paused)\(refused)"
    }

    private func loadProducts(refresh: Bool) async {
        guard let commerce else { return }
        do {
            if refresh, try await commerce.products().isEmpty {
                try await commerce.refreshCatalog()
            }
            products = try await commerce.products()
        } catch {
            show(error)
        }
    }

    private func show(_ error: Error) {
        show(error.localizedDescription)
    }

    private func show(_ message: String) {
        errorText = message
        showsError = true
    }
}
