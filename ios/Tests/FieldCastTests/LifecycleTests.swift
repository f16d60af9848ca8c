import Darwin
import FieldCast
import XCTest

/// Many sessions and many frames: memory stays flat, close is idempotent, nothing arrives after it.
final class LifecycleTests: XCTestCase {
    private let warmUp = 20
    private let cycles = 200
    private let pushes = 100_000

    private func config(_ url: String) -> SessionConfig {
        SessionConfig(
            ingestUrl: url,
            source: .app(video: VideoFormat(format: .i420, width: 320, height: 180), audio: nil),
            profile: .p270,
            adaptiveBitrate: false
        )
    }

    private let planes = [
        VideoPlane(bytes: Data(count: 320 * 180), bytesPerRow: 320, pixelStride: 1),
        VideoPlane(bytes: Data(count: 160 * 90), bytesPerRow: 160, pixelStride: 1),
        VideoPlane(bytes: Data(count: 160 * 90), bytesPerRow: 160, pixelStride: 1),
    ]

    /// One create/start/push/stop/close cycle; counts events that arrive after close.
    private func cycle(_ n: Int, url: String, late: LateEvents) async throws {
        let streamer = try FieldCast.streamer(config(url))
        let closed = LateEvents()
        _ = try streamer.subscribe { _ in if closed.count > 0 { late.add() } }
        try await streamer.start(awaitLive: false)
        _ = try streamer.pushVideoFrame(format: .i420, width: 320, height: 180, planes: planes, timestampUs: 0)
        let ended = try await within(seconds: 15) { try await streamer.stop() }
        XCTAssertEqual(ended, .ended, "cycle \(n)")
        streamer.close()
        closed.add()
        streamer.close()
    }

    /// `count` pushes as fast as they can be made into one session; most are dropped.
    private func push(_ count: Int, url: String) async throws {
        let streamer = try FieldCast.streamer(config(url))
        defer { streamer.close() }
        try await streamer.start(awaitLive: false)
        var queued = 0
        for _ in 0..<count {
            if try streamer.pushVideoFrame(format: .i420, width: 320, height: 180, planes: planes) == .queued {
                queued += 1
            }
        }
        let ended = try await within(seconds: 15) { try await streamer.stop() }
        XCTAssertEqual(ended, .ended)
        print("lifecycle: \(count) pushes, \(queued) queued, the rest dropped by the full queue")
    }

    func testCyclesAndPushesKeepMemoryFlatAndNothingArrivesAfterClose() async throws {
        let sandbox = try Sandbox.start()
        defer { sandbox.close() }
        let url = try await sandbox.createLiveSession(title: "lifecycle").publishUrl
        let late = LateEvents()
        // Warm-up: caches, pools and allocator arenas reach their working size; a leak goes on after.
        for n in 1...warmUp {
            try await cycle(n, url: url, late: late)
        }
        try await push(pushes, url: url)
        let afterWarmUp = residentBytes()
        for n in (warmUp + 1)...cycles {
            try await cycle(n, url: url, late: late)
        }
        try await push(pushes, url: url)
        let end = residentBytes()
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertEqual(late.count, 0, "events delivered after close")
        let growth = (Double(end) - Double(afterWarmUp)) * 100 / Double(afterWarmUp)
        print("lifecycle: resident \(afterWarmUp >> 20) MiB after warm-up, \(end >> 20) MiB at the end: growth \(growth) % (target < 5 %)")
        XCTAssertLessThan(growth, 5, "resident memory grew after warm-up")
    }

    /// This process's resident size in bytes (Mach task info).
    private func residentBytes() -> UInt64 {
        var info = mach_task_basic_info()
        var count = mach_msg_type_number_t(MemoryLayout<mach_task_basic_info>.size / MemoryLayout<natural_t>.size)
        let result = withUnsafeMutablePointer(to: &info) { pointer in
            pointer.withMemoryRebound(to: integer_t.self, capacity: Int(count)) {
                task_info(mach_task_self_, task_flavor_t(MACH_TASK_BASIC_INFO), $0, &count)
            }
        }
        return result == KERN_SUCCESS ? info.resident_size : 0
    }
}

/// A counter shared with FieldCast's event threads.
final class LateEvents: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    /// The count now.
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    /// Adds one.
    func add() {
        lock.lock()
        value += 1
        lock.unlock()
    }
}
