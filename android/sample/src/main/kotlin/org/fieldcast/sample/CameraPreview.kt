package org.fieldcast.sample

import android.content.Context
import android.graphics.SurfaceTexture
import android.view.Surface
import android.view.TextureView
import org.fieldcast.android.CameraFrameSource

/**
 * Shows what a [CameraFrameSource] captures, in the same camera session as the frames it pushes:
 * hands the source a surface while this view has one, and takes it back before it goes away, so
 * that the live goes on with the screen off.
 */
class CameraPreview(context: Context) : TextureView(context), TextureView.SurfaceTextureListener {
    private var source: CameraFrameSource? = null
    private var surface: Surface? = null

    init {
        surfaceTextureListener = this
    }

    /** Previews [camera] from now on. */
    fun show(camera: CameraFrameSource) {
        source = camera
        surfaceTexture?.let(::attach)
    }

    override fun onSurfaceTextureAvailable(texture: SurfaceTexture, width: Int, height: Int) = attach(texture)

    override fun onSurfaceTextureDestroyed(texture: SurfaceTexture): Boolean {
        source?.setPreview(null)
        surface?.release()
        surface = null
        return true
    }

    override fun onSurfaceTextureSizeChanged(texture: SurfaceTexture, width: Int, height: Int) = Unit

    override fun onSurfaceTextureUpdated(texture: SurfaceTexture) = Unit

    private fun attach(texture: SurfaceTexture) {
        val camera = source ?: return
        texture.setDefaultBufferSize(camera.width, camera.height)
        surface?.release()
        surface = Surface(texture).also(camera::setPreview)
    }
}
