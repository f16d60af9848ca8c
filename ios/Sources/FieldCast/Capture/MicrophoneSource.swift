import AVFoundation

/// Records the microphone with an `AVAudioEngine` tap, converts it to 16-bit mono PCM at
/// `sampleRate` and pushes it to `streamer` with its capture time while the session takes media.
/// Configure the session with `AudioFormat(rate: UInt32(sampleRate), channels: 1)`.
public final class MicrophoneSource: @unchecked Sendable {
    /// The rate of the pushed PCM, in Hz.
    public let sampleRate: Double

    private let engine = AVAudioEngine()
    private let streamer: Streamer
    private let onError: @Sendable (Error) -> Void

    /// A source for `streamer` at `sampleRate` (48 kHz by default); `onError` gets push failures.
    public init(streamer: Streamer, sampleRate: Double = 48_000, onError: @escaping @Sendable (Error) -> Void = { _ in }) {
        self.streamer = streamer
        self.sampleRate = sampleRate
        self.onError = onError
    }

    /// Starts recording (once; a running source stays as it is). On iOS it first sets the audio session to play-and-record in video
    /// recording mode (a live continues with the screen locked when the app declares the `audio`
    /// background mode). Throws `FieldCastError.SourceUnavailable` without a microphone or the
    /// permission.
    public func start() throws {
        guard !engine.isRunning else { return }
        #if os(iOS)
        let audioSession = AVAudioSession.sharedInstance()
        try audioSession.setCategory(.playAndRecord, mode: .videoRecording, options: [.defaultToSpeaker, .allowBluetooth])
        try audioSession.setActive(true)
        #endif
        let input = engine.inputNode
        let captured = input.outputFormat(forBus: 0)
        guard captured.sampleRate > 0,
              let pushed = AVAudioFormat(commonFormat: .pcmFormatInt16, sampleRate: sampleRate, channels: 1, interleaved: true),
              let converter = AVAudioConverter(from: captured, to: pushed) else {
            throw FieldCastError.SourceUnavailable(detail: "no microphone input, or no permission")
        }
        let chunk = AVAudioFrameCount(captured.sampleRate / 50)
        input.installTap(onBus: 0, bufferSize: chunk, format: captured) { [streamer, onError] buffer, time in
            guard streamer.state.value.takesMedia,
                  let pcm = Self.convert(buffer, with: converter, to: pushed),
                  let samples = pcm.int16ChannelData?[0] else { return }
            let bytes = Data(bytesNoCopy: samples, count: Int(pcm.frameLength) * 2, deallocator: .none)
            let timestamp = time.isHostTimeValid ? CaptureClock.microseconds(hostTime: time.hostTime) : nil
            do {
                _ = try streamer.pushAudio(pcm: bytes, timestampUs: timestamp)
            } catch {
                onError(error)
            }
        }
        engine.prepare()
        do {
            try engine.start()
        } catch {
            input.removeTap(onBus: 0)
            throw FieldCastError.SourceUnavailable(detail: "the microphone did not start: \(error.localizedDescription)")
        }
    }

    /// Stops recording. Idempotent.
    public func close() {
        engine.inputNode.removeTap(onBus: 0)
        engine.stop()
    }

    /// One tap buffer in the pushed format (rate and channels converted).
    private static func convert(_ buffer: AVAudioPCMBuffer, with converter: AVAudioConverter, to format: AVAudioFormat) -> AVAudioPCMBuffer? {
        let ratio = format.sampleRate / buffer.format.sampleRate
        let capacity = AVAudioFrameCount((Double(buffer.frameLength) * ratio).rounded(.up)) + 1
        guard let out = AVAudioPCMBuffer(pcmFormat: format, frameCapacity: capacity) else { return nil }
        var handedOver = false
        var error: NSError?
        let status = converter.convert(to: out, error: &error) { _, inputStatus in
            if handedOver {
                inputStatus.pointee = .noDataNow
                return nil
            }
            handedOver = true
            inputStatus.pointee = .haveData
            return buffer
        }
        return status == .error || out.frameLength == 0 ? nil : out
    }
}
