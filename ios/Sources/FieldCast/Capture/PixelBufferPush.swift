import CoreVideo
import Foundation

extension Streamer {
    /// Pushes a camera frame as `AVCaptureVideoDataOutput` hands it: BGRA
    /// (`kCVPixelFormatType_32BGRA`) or bi-planar 4:2:0 (`kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange`
    /// or `...FullRange`, pushed as `.nv12`). The planes go to the core with their bytes per row,
    /// without a copy on the Swift side: the buffer's base address is locked for the call only.
    /// The session's `VideoFormat` must match the buffer's format and size.
    public func pushPixelBuffer(_ pixelBuffer: CVPixelBuffer, timestampUs: UInt64? = nil) throws -> PushOutcome {
        let format: PixelFormat
        switch CVPixelBufferGetPixelFormatType(pixelBuffer) {
        case kCVPixelFormatType_32BGRA:
            format = .bgra
        case kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange, kCVPixelFormatType_420YpCbCr8BiPlanarFullRange:
            format = .nv12
        case let other:
            throw FieldCastError.InvalidFrame(detail: "pixel format \(other) is neither BGRA nor bi-planar 4:2:0")
        }
        CVPixelBufferLockBaseAddress(pixelBuffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(pixelBuffer, .readOnly) }
        return try pushVideoFrame(
            format: format,
            width: CVPixelBufferGetWidth(pixelBuffer),
            height: CVPixelBufferGetHeight(pixelBuffer),
            planes: Self.planes(of: pixelBuffer, format: format),
            timestampUs: timestampUs
        )
    }

    /// The planes of a locked pixel buffer, wrapping its memory without copying it.
    private static func planes(of pixelBuffer: CVPixelBuffer, format: PixelFormat) throws -> [VideoPlane] {
        guard CVPixelBufferIsPlanar(pixelBuffer) else {
            guard let base = CVPixelBufferGetBaseAddress(pixelBuffer) else { throw unlocked() }
            let bytesPerRow = CVPixelBufferGetBytesPerRow(pixelBuffer)
            let count = bytesPerRow * CVPixelBufferGetHeight(pixelBuffer)
            return [VideoPlane(bytes: Data(bytesNoCopy: base, count: count, deallocator: .none), bytesPerRow: bytesPerRow, pixelStride: 4)]
        }
        return try (0..<CVPixelBufferGetPlaneCount(pixelBuffer)).map { index in
            guard let base = CVPixelBufferGetBaseAddressOfPlane(pixelBuffer, index) else { throw unlocked() }
            let bytesPerRow = CVPixelBufferGetBytesPerRowOfPlane(pixelBuffer, index)
            let count = bytesPerRow * CVPixelBufferGetHeightOfPlane(pixelBuffer, index)
            let bytes = Data(bytesNoCopy: base, count: count, deallocator: .none)
            return VideoPlane(bytes: bytes, bytesPerRow: bytesPerRow, pixelStride: index == 0 ? 1 : 2)
        }
    }

    private static func unlocked() -> FieldCastError {
        .InvalidFrame(detail: "the pixel buffer has no base address")
    }
}
