import FieldCast
import SwiftUI

/// One product of the list: its title, price and stock, a pin button (pin while live, unpin when
/// pinned) and a sell button.
struct ProductRow: View {
    let product: Product
    let pinned: Bool
    let live: Bool
    let onPinToggle: () -> Void
    let onSell: () -> Void

    var body: some View {
        HStack {
            VStack(alignment: .leading) {
                Text(product.title)
                Text("\(price) · \(product.stock) \(product.unit) left")
                    .font(.caption)
                    .foregroundStyle(.secondary)
            }
            Spacer()
            Button(pinned ? "Unpin" : "Pin", action: onPinToggle)
                .disabled(!live)
            Button("Sell", action: onSell)
        }
        .buttonStyle(.bordered)
    }

    private var price: String {
        let format = NumberFormatter()
        format.numberStyle = .currency
        format.currencyCode = product.currency
        let minor = pow(10, Double(format.maximumFractionDigits))
        return format.string(from: NSNumber(value: Double(product.priceMinor) / minor)) ?? "\(product.priceMinor)"
    }
}
