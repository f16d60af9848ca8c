import AVFoundation
import SwiftUI

/// Shows a camera's capture session, the same session whose frames go to the live.
struct CameraPreview: UIViewRepresentable {
    /// The session to show.
    let session: AVCaptureSession

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.session = session
        view.previewLayer.videoGravity = .resizeAspect
        return view
    }

    func updateUIView(_ view: PreviewView, context: Context) {
        view.previewLayer.session = session
    }

    /// A view whose layer is an `AVCaptureVideoPreviewLayer`.
    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }

        /// The view's layer.
        var previewLayer: AVCaptureVideoPreviewLayer {
            // layerClass makes the layer an AVCaptureVideoPreviewLayer.
            layer as! AVCaptureVideoPreviewLayer
        }
    }
}
