//! Commerce errors: validation, business rules and store failures, each typed.

use crate::store::StoreError;

/// Why a catalog, sale or pin call was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommerceError {
    /// A field has a value the call cannot accept.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The quantity of a sale must be at least 1.
    #[error("quantity must be at least 1 (got {quantity})")]
    InvalidQuantity {
        /// The refused quantity.
        quantity: i64,
    },
    /// The product is not in the local catalog; refresh the catalog or add it first.
    #[error("unknown product `{product_id}`: refresh the catalog or add the product first")]
    UnknownProduct {
        /// The product id given.
        product_id: String,
    },
    /// Not enough stock for the sale; retry with `allow_oversell` if the farmer confirms.
    #[error(
        "only {available} left of `{product_id}`, {requested} requested: sell fewer or confirm an oversell"
    )]
    InsufficientStock {
        /// The product.
        product_id: String,
        /// Stock before the sale.
        available: i64,
        /// Quantity asked for.
        requested: i64,
    },
    /// No pin with this id.
    #[error("unknown pin `{pin_id}`")]
    UnknownPin {
        /// The pin id given.
        pin_id: String,
    },
    /// The pin was already ended.
    #[error("pin `{pin_id}` already ended at {ended_stream_time_ms} ms")]
    PinAlreadyEnded {
        /// The pin.
        pin_id: String,
        /// Where it ended.
        ended_stream_time_ms: u64,
    },
    /// The local database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for CommerceError {
    fn from(err: rusqlite::Error) -> Self {
        CommerceError::Store(err.into())
    }
}
