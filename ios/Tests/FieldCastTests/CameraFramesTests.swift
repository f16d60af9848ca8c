import FieldCast
import XCTest

/// Frames pushed from Swift arrive whole: N (±1) frames of the pushed colour, in BGRA and NV12,
/// as planes over `Data` and as `CVPixelBuffer`s.
final class CameraFramesTests: XCTestCase {
    private let width = 320
    private let height = 180

    func testNv12PlanesArriveWhole() async throws {
        let planes = CameraFrames.solid(.nv12, width: width, height: height, rgb: (120, 40, 160))
        try await pushSolidFrames(.nv12, rgb: (120, 40, 160)) { streamer, ts in
            try streamer.pushVideoFrame(format: .nv12, width: self.width, height: self.height, planes: planes, timestampUs: ts)
        }
    }

    func testBgraPlanesArriveWhole() async throws {
        let planes = CameraFrames.solid(.bgra, width: width, height: height, rgb: (250, 200, 30))
        try await pushSolidFrames(.bgra, rgb: (250, 200, 30)) { streamer, ts in
            try streamer.pushVideoFrame(format: .bgra, width: self.width, height: self.height, planes: planes, timestampUs: ts)
        }
    }

    func testNv12PixelBuffersArriveWhole() async throws {
        let buffer = try XCTUnwrap(CameraFrames.pixelBuffer(.nv12, width: width, height: height, rgb: (220, 140, 20)))
        try await pushSolidFrames(.nv12, rgb: (220, 140, 20)) { streamer, ts in
            try streamer.pushPixelBuffer(buffer, timestampUs: ts)
        }
    }

    func testBgraPixelBuffersArriveWhole() async throws {
        let buffer = try XCTUnwrap(CameraFrames.pixelBuffer(.bgra, width: width, height: height, rgb: (30, 160, 220)))
        try await pushSolidFrames(.bgra, rgb: (30, 160, 220)) { streamer, ts in
            try streamer.pushPixelBuffer(buffer, timestampUs: ts)
        }
    }

    /// Pushes 60 frames at 30 fps with audio, then checks what the ingest recorded.
    private func pushSolidFrames(
        _ format: PixelFormat,
        rgb: (r: Double, g: Double, b: Double),
        push: (Streamer, UInt64) throws -> PushOutcome
    ) async throws {
        let frames = 60
        let sandbox = try Sandbox.start()
        defer { sandbox.close() }
        let live = try await sandbox.createLiveSession(title: "\(format)")
        let video = VideoFormat(format: format, width: UInt32(width), height: UInt32(height))
        let streamer = try FieldCast.streamer(SessionConfig(
            ingestUrl: live.publishUrl,
            source: .app(video: video, audio: AudioFormat(rate: 48_000, channels: 1)),
            profile: .p360,
            adaptiveBitrate: false
        ))
        defer { streamer.close() }
        let tone = Data(count: 48_000 / 30 * 2)
        try await streamer.start(awaitLive: false)
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<frames {
            let ts = UInt64(i) * 1_000_000 / 30
            XCTAssertEqual(try push(streamer, ts), .queued, "frame \(i)")
            _ = try streamer.pushAudio(pcm: tone, timestampUs: ts)
            let next = start + UInt64(i + 1) * 1_000_000_000 / 30
            let now = DispatchTime.now().uptimeNanoseconds
            if next > now { try await Task.sleep(nanoseconds: next - now) }
        }
        XCTAssertEqual(streamer.state.value, .live, "live after \(frames) frames")
        let ended = try await within(seconds: 15) { try await streamer.stop() }
        XCTAssertEqual(ended, .ended)
        XCTAssertEqual(streamer.stats.value?.droppedFrames ?? 0, 0, "no frame dropped")

        let file = sandbox.recording(live.streamKey)
        let recorded = try XCTUnwrap(MediaProbe.streams(file)["video"])
        XCTAssertEqual(recorded.width, 640)
        XCTAssertEqual(recorded.height, 360)
        XCTAssertLessThanOrEqual(abs((recorded.frames ?? 0) - frames), 1, "pushed \(frames) \(format) frames")
        let mean = try MediaProbe.meanRgb(file, frame: frames / 2)
        let distance = ((mean.r - rgb.r) * (mean.r - rgb.r) + (mean.g - rgb.g) * (mean.g - rgb.g) + (mean.b - rgb.b) * (mean.b - rgb.b)).squareRoot()
        XCTAssertLessThan(distance, 25, "\(format) decoded as \(mean), pushed \(rgb)")
    }
}
