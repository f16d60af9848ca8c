import CoreVideo
import FieldCast
import Foundation

/// Solid-colour frames laid out as cameras hand them: padded rows, as `VideoPlane`s over `Data` or
/// as a `CVPixelBuffer` from CoreVideo's own allocator.
enum CameraFrames {
    /// Bytes added to every row.
    static let pad = 64

    /// BT.601 limited-range Y, U, V of an RGB colour (what players assume without metadata).
    static func yuv(_ rgb: (r: Double, g: Double, b: Double)) -> (y: UInt8, u: UInt8, v: UInt8) {
        let y = 16 + 0.257 * rgb.r + 0.504 * rgb.g + 0.098 * rgb.b
        let u = 128 - 0.148 * rgb.r - 0.291 * rgb.g + 0.439 * rgb.b
        let v = 128 + 0.439 * rgb.r - 0.368 * rgb.g - 0.071 * rgb.b
        return (UInt8(y.rounded()), UInt8(u.rounded()), UInt8(v.rounded()))
    }

    /// `rows` rows of `fill` repeated to `row` bytes, each padded to `stride` but the last.
    static func plane(row: Int, rows: Int, stride: Int, fill: [UInt8]) -> Data {
        var bytes = [UInt8](repeating: 0xEE, count: (rows - 1) * stride + row)
        for r in 0..<rows {
            for i in 0..<row {
                bytes[r * stride + i] = fill[i % fill.count]
            }
        }
        return Data(bytes)
    }

    /// One `.nv12` or `.bgra` frame of `width` x `height` in `rgb`.
    static func solid(_ format: PixelFormat, width: Int, height: Int, rgb: (r: Double, g: Double, b: Double)) -> [VideoPlane] {
        let (y, u, v) = yuv(rgb)
        if format == .bgra {
            let stride = width * 4 + pad
            let pixel = [UInt8(rgb.b), UInt8(rgb.g), UInt8(rgb.r), 0xFF]
            return [VideoPlane(bytes: plane(row: width * 4, rows: height, stride: stride, fill: pixel), bytesPerRow: stride, pixelStride: 4)]
        }
        let stride = width + pad
        return [
            VideoPlane(bytes: plane(row: width, rows: height, stride: stride, fill: [y]), bytesPerRow: stride, pixelStride: 1),
            VideoPlane(bytes: plane(row: width, rows: height / 2, stride: stride, fill: [u, v]), bytesPerRow: stride, pixelStride: 2),
        ]
    }

    /// The same frame in a `CVPixelBuffer` (`kCVPixelFormatType_32BGRA` or bi-planar video range).
    static func pixelBuffer(_ format: PixelFormat, width: Int, height: Int, rgb: (r: Double, g: Double, b: Double)) -> CVPixelBuffer? {
        let type = format == .bgra ? kCVPixelFormatType_32BGRA : kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange
        var created: CVPixelBuffer?
        guard CVPixelBufferCreate(nil, width, height, type, nil, &created) == kCVReturnSuccess, let buffer = created else { return nil }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        let (y, u, v) = yuv(rgb)
        let fills: [[UInt8]] = format == .bgra ? [[UInt8(rgb.b), UInt8(rgb.g), UInt8(rgb.r), 0xFF]] : [[y], [u, v]]
        for (index, fill) in fills.enumerated() {
            let planar = CVPixelBufferIsPlanar(buffer)
            guard let base = planar ? CVPixelBufferGetBaseAddressOfPlane(buffer, index) : CVPixelBufferGetBaseAddress(buffer) else { return nil }
            let stride = planar ? CVPixelBufferGetBytesPerRowOfPlane(buffer, index) : CVPixelBufferGetBytesPerRow(buffer)
            let rows = planar ? CVPixelBufferGetHeightOfPlane(buffer, index) : height
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            for i in 0..<(stride * rows) {
                bytes[i] = fill[(i % stride) % fill.count]
            }
        }
        return buffer
    }
}
