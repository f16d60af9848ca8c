package org.fieldcast.sample

import android.content.Context
import android.widget.Button
import android.widget.LinearLayout
import android.widget.TextView
import java.math.BigDecimal
import java.text.NumberFormat
import java.util.Currency
import org.fieldcast.ffi.Product

/**
 * One product of the list: its title, price and stock, a pin button (pin while live, unpin when
 * pinned) and a sell button. Built in code.
 */
class ProductRow(
    context: Context,
    product: Product,
    pinned: Boolean,
    live: Boolean,
    onPinToggle: () -> Unit,
    onSell: () -> Unit,
) : LinearLayout(context) {
    init {
        orientation = HORIZONTAL
        val label = TextView(context).apply {
            text = "${product.title}\n${formatMoney(product.priceMinor, product.currency)} · ${product.stock} ${product.unit} left"
        }
        addView(label, LayoutParams(0, LayoutParams.WRAP_CONTENT, 1f))
        addView(Button(context).apply {
            text = if (pinned) "Unpin" else "Pin"
            isEnabled = live
            setOnClickListener { onPinToggle() }
        })
        addView(Button(context).apply {
            text = "Sell"
            setOnClickListener { onSell() }
        })
    }

    private fun formatMoney(minor: Long, currencyCode: String): String {
        val currency = Currency.getInstance(currencyCode)
        val format = NumberFormat.getCurrencyInstance().apply { this.currency = currency }
        return format.format(BigDecimal.valueOf(minor, currency.defaultFractionDigits.coerceAtLeast(0)))
    }
}
