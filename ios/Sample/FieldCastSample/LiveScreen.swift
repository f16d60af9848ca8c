import FieldCast
import SwiftUI

/// The farmer's screen: the camera preview, the live's state and bitrate, a badge with the sales
/// waiting to sync, a "Go live" / "End live" button, and the products with pin and sell buttons.
struct LiveScreen: View {
    @StateObject var model: LiveModel

    var body: some View {
        ScrollView {
            VStack(alignment: .leading, spacing: 12) {
                if let camera = model.camera {
                    CameraPreview(session: camera.captureSession)
                        .aspectRatio(16 / 9, contentMode: .fit)
                }
                Text(model.stateText)
                Text(model.bitrateText).font(.caption)
                Text(model.syncBadge)
                    .padding(6)
                    .background(.orange.opacity(0.2), in: Capsule())
                Button(model.isLive ? "End live" : "Go live") {
                    model.isLive ? model.endLive() : model.goLive()
                }
                .buttonStyle(.borderedProminent)
                .disabled(model.camera == nil)
                ForEach(model.products, id: \.id) { product in
                    ProductRow(
                        product: product,
                        pinned: model.pins[product.id] != nil,
                        live: model.isLive,
                        onPinToggle: { model.togglePin(product) },
                        onSell: { model.sell(product) }
                    )
                }
            }
            .padding()
        }
        .task { await model.open() }
        .alert("FieldCast", isPresented: $model.showsError, actions: {}, message: { Text(model.errorText) })
    }
}
