import Foundation

/// One plane of a camera frame: its bytes with the bytes per row and bytes per pixel, as a
/// `CVPixelBuffer` plane (or Android's `Image.Plane`) describes it. The bytes are read during the
/// push call only, so they may wrap memory without copying (`Data(bytesNoCopy:count:deallocator: .none)`)
/// that stays valid until the call returns.
public struct VideoPlane {
    /// The plane's bytes, from its first row to the end of its last row.
    public let bytes: Data
    /// Bytes from the start of one row to the start of the next (padding included).
    public let bytesPerRow: Int
    /// Bytes from one pixel to the next: 1 for luma, 2 for interleaved chroma, 4 for BGRA.
    public let pixelStride: Int

    /// A plane of `bytes` laid out in rows of `bytesPerRow` bytes.
    public init(bytes: Data, bytesPerRow: Int, pixelStride: Int) {
        self.bytes = bytes
        self.bytesPerRow = bytesPerRow
        self.pixelStride = pixelStride
    }
}
