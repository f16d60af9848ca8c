package org.fieldcast.android

import android.graphics.ImageFormat
import android.media.Image
import org.fieldcast.Streamer
import org.fieldcast.VideoPlane
import org.fieldcast.ffi.FieldCastException
import org.fieldcast.ffi.PixelFormat
import org.fieldcast.ffi.PushOutcome

/**
 * The planes of a `YUV_420_888` image as FieldCast reads them: each plane's own buffer with its
 * row and pixel strides, in Y, U, V order, without a copy. The buffers stay valid until the image
 * is closed.
 */
fun Array<out Image.Plane>.toVideoPlanes(): List<VideoPlane> =
    map { VideoPlane(it.buffer, it.rowStride, it.pixelStride) }

/**
 * Pushes a camera image in [ImageFormat.YUV_420_888] as one video frame captured at [timestampUs]
 * (on the audio's clock). The image is read during the call and copied once; the caller closes it
 * afterwards. Throws [FieldCastException.InvalidFrame] for another format or planes that do not
 * fit the image's size.
 */
@Throws(FieldCastException::class)
fun Streamer.pushImage(image: Image, timestampUs: Long): PushOutcome {
    if (image.format != ImageFormat.YUV_420_888) {
        throw FieldCastException.InvalidFrame("camera images must be YUV_420_888 (got format ${image.format})")
    }
    return pushVideoFrame(PixelFormat.YUV420_FLEXIBLE, image.width, image.height, image.planes.toVideoPlanes(), timestampUs)
}
