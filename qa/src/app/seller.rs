//! The farmer's side of a live: sales taken, products pinned and unpinned, each printed as an
//! [`AppEvent`] line; what failed is printed and counted.

use fieldcast_core::probe::now_ms;
use fieldcast_core::{LiveSession, NewSale, Pin, Sales, Store};

use crate::events::AppEvent;

/// Prints an `error` line for `action`.
pub fn report_error(action: &str, message: &str) {
    AppEvent::Error {
        wall_ms: now_ms(),
        action: action.into(),
        message: message.into(),
    }
    .print();
}

/// Sales and pins of one seller.
pub struct Seller {
    sales: Sales,
    /// The platform's live session the sales belong to, once there is one.
    session_id: Option<String>,
    open_pin: Option<Pin>,
    sold: usize,
    /// Actions that failed.
    pub failures: usize,
}

impl Seller {
    /// A seller taking sales into `store`.
    pub fn new(store: Store) -> Seller {
        Seller {
            sales: Sales::new(store),
            session_id: None,
            open_pin: None,
            sold: 0,
            failures: 0,
        }
    }

    /// Links the sales from now on to the platform's live session `id`.
    pub fn set_session(&mut self, id: &str) {
        self.session_id = Some(id.into());
    }

    /// The platform's live session of the sales, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// Prints and counts a failed `action`.
    pub fn fail(&mut self, action: &str, message: &str) {
        self.failures += 1;
        report_error(action, message);
    }

    /// Takes one sale of `quantity` units of `product`.
    pub fn sell(&mut self, product: &str, quantity: i64) {
        let taken = self.sales.record_sale(NewSale {
            session_id: self.session_id.clone(),
            buyer: Some(format!("buyer {}", self.sold)),
            ..NewSale::new(product, quantity)
        });
        self.sold += 1;
        match taken {
            Ok(sale) => AppEvent::Sale {
                wall_ms: now_ms(),
                sale_id: sale.id,
                product_id: sale.product_id,
                quantity: sale.quantity,
            }
            .print(),
            Err(e) => self.fail("sell", &e.to_string()),
        }
    }

    /// Ends the open pin, if any, and pins `product` in `session`.
    pub fn pin(&mut self, session: &LiveSession, product: &str) {
        self.unpin(session);
        match session.pin_product(product) {
            Ok(pin) => {
                AppEvent::Pin {
                    wall_ms: now_ms(),
                    pin_id: pin.id.clone(),
                    product_id: pin.product_id.clone(),
                }
                .print();
                self.open_pin = Some(pin);
            }
            Err(e) => self.fail("pin", &e.to_string()),
        }
    }

    /// Ends the open pin in `session`, if any.
    pub fn unpin(&mut self, session: &LiveSession) {
        let Some(pin) = self.open_pin.take() else {
            return;
        };
        match session.unpin_product(&pin.id) {
            Ok(pin) => AppEvent::Unpin {
                wall_ms: now_ms(),
                pin_id: pin.id,
                product_id: pin.product_id,
            }
            .print(),
            Err(e) => self.fail("unpin", &e.to_string()),
        }
    }
}
