//! Commerce on the phone: the local catalog, sales and product pins. Every change is one SQLite
//! transaction that also queues its outbox record, so what the call acknowledged is both durable and
//! on its way to the platform.

mod error;
pub mod pins;
pub mod products;
pub mod sales;

pub use error::CommerceError;
pub use pins::{Pin, Pins};
pub use products::{Catalog, Product, RemoteProduct};
pub use sales::{NewSale, Sale, Sales};

/// Checks a currency code: three upper-case ASCII letters (ISO 4217 style).
pub fn validate_currency(code: &str) -> Result<(), CommerceError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(CommerceError::Invalid {
            field: "currency",
            reason: format!("`{code}` is not three upper-case letters like KES or USD"),
        })
    }
}

/// A new record id: a UUIDv7 (time-ordered), also the record's `Idempotency-Key`.
pub(crate) fn new_record_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_three_upper_case_letters() {
        for ok in ["KES", "USD", "CNY"] {
            assert!(validate_currency(ok).is_ok(), "{ok}");
        }
        for bad in ["kes", "US", "USDT", "U$D", "", "ÄBC"] {
            assert!(validate_currency(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn record_ids_are_time_ordered_uuid_v7() {
        let a = new_record_id();
        let b = new_record_id();
        assert!(a < b);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 7);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Fixtures shared by the unit tests.

    use super::{Catalog, Product};
    use crate::store::Store;

    /// A box of oranges with 10 in stock.
    pub(crate) fn oranges() -> Product {
        Product {
            id: "orange-box".into(),
            title: "Oranges, 5 kg box".into(),
            price_minor: 1250,
            currency: "KES".into(),
            unit: "box".into(),
            stock: 10,
            image_path: Some("/sdcard/oranges.jpg".into()),
        }
    }

    /// A fresh store in a temporary folder with [`oranges`] in the catalog.
    pub(crate) fn store_with_oranges() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("fieldcast.db")).unwrap();
        Catalog::new(store.clone()).upsert(&oranges()).unwrap();
        (dir, store)
    }
}
