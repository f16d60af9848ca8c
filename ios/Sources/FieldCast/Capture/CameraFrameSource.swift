import AVFoundation

/// Captures a camera with an `AVCaptureVideoDataOutput` and pushes each frame to `streamer` while
/// it is connecting, live or reconnecting, so that the preview may run before a live. Frames are
/// BGRA or bi-planar 4:2:0 (`.nv12`, video range) at `width` x `height`, pushed from the
/// capture queue with their capture time; configure the session with
/// `MediaSource.app(video: VideoFormat(format: source.pixelFormat, width: ..., height: ...), audio: ...)`.
/// Show `captureSession` with an `AVCaptureVideoPreviewLayer`.
public final class CameraFrameSource: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate, @unchecked Sendable {
    /// The capture session, for a preview layer.
    public let captureSession: AVCaptureSession
    /// The frame width in pixels.
    public let width: Int
    /// The frame height in pixels.
    public let height: Int
    /// The format of the pushed frames: `.nv12` or `.bgra`.
    public let pixelFormat: PixelFormat

    private let queue = DispatchQueue(label: "fieldcast-camera")
    private let lock = NSLock()
    private var target: Streamer?
    private let onError: @Sendable (Error) -> Void

    /// Opens the camera at `position` with the session preset `preset` (1280x720 by default) in
    /// `pixelFormat` (`.nv12` or `.bgra`). Throws `FieldCastError.SourceUnavailable` without a
    /// camera or the permission. `onError` gets push failures (on the capture queue).
    public init(
        preset: AVCaptureSession.Preset = .hd1280x720,
        position: AVCaptureDevice.Position = .back,
        pixelFormat: PixelFormat = .nv12,
        onError: @escaping @Sendable (Error) -> Void = { _ in }
    ) throws {
        let pixelType: OSType
        switch pixelFormat {
        case .nv12: pixelType = kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange
        case .bgra: pixelType = kCVPixelFormatType_32BGRA
        default: throw FieldCastError.InvalidConfig(detail: "the camera delivers .nv12 or .bgra, not \(pixelFormat)")
        }
        let session = AVCaptureSession()
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: position),
              let input = try? AVCaptureDeviceInput(device: device),
              session.canAddInput(input), session.canSetSessionPreset(preset),
              let size = Self.dimensions[preset] else {
            throw FieldCastError.SourceUnavailable(detail: "no camera at \(position) with preset \(preset.rawValue), or no permission")
        }
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: pixelType]
        output.alwaysDiscardsLateVideoFrames = true
        session.beginConfiguration()
        session.sessionPreset = preset
        session.addInput(input)
        if session.canAddOutput(output) { session.addOutput(output) }
        session.commitConfiguration()
        captureSession = session
        width = size.width
        height = size.height
        self.pixelFormat = pixelFormat
        self.onError = onError
        super.init()
        output.setSampleBufferDelegate(self, queue: queue)
    }

    /// The frame size of each preset the source accepts.
    private static let dimensions: [AVCaptureSession.Preset: (width: Int, height: Int)] = [
        .vga640x480: (640, 480), .hd1280x720: (1280, 720), .hd1920x1080: (1920, 1080),
    ]

    /// The live that receives the frames; nil keeps only the preview.
    public var streamer: Streamer? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return target
        }
        set {
            lock.lock()
            target = newValue
            lock.unlock()
        }
    }

    /// Starts capturing (off the caller's thread: `startRunning` blocks).
    public func start() {
        queue.async { [captureSession] in captureSession.startRunning() }
    }

    /// Stops capturing; no frame is pushed after the capture queue drains.
    public func stop() {
        queue.async { [captureSession] in captureSession.stopRunning() }
    }

    /// Pushes one captured frame (the capture queue calls this).
    public func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let streamer, streamer.state.value.takesMedia,
              let pixelBuffer = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        let time = CaptureClock.microseconds(CMSampleBufferGetPresentationTimeStamp(sampleBuffer))
        do {
            _ = try streamer.pushPixelBuffer(pixelBuffer, timestampUs: time)
        } catch {
            onError(error)
        }
    }
}
