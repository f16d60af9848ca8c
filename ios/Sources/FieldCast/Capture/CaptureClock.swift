import CoreMedia

/// Capture times in microseconds on the host clock, the clock of both the camera's sample buffers
/// and the microphone's audio times, so that the core maps audio and video with one origin.
enum CaptureClock {
    /// A sample buffer's presentation time.
    static func microseconds(_ time: CMTime) -> UInt64? {
        guard time.isNumeric else { return nil }
        let us = CMTimeConvertScale(time, timescale: 1_000_000, method: .default).value
        return us >= 0 ? UInt64(us) : nil
    }

    /// A host time (`mach_absolute_time` ticks), as `AVAudioTime.hostTime` gives it.
    static func microseconds(hostTime: UInt64) -> UInt64? {
        microseconds(CMClockMakeHostTimeFromSystemUnits(hostTime))
    }
}
