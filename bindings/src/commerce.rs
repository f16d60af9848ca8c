//! The store (catalog, sales, pins, outbox counts) and its records.

use std::sync::Arc;

use fieldcast_core as core;

use crate::error::FieldCastError;

/// Epoch milliseconds of a UTC time.
fn epoch_ms(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A product of the local catalog. Money is integer minor units plus a currency code.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Product {
    /// Stable id shared with the platform, e.g. `orange-box`.
    pub id: String,
    /// Name shown to buyers.
    pub title: String,
    /// Price of one unit in minor units (cents).
    pub price_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// What one unit is (`box`, `kg`).
    pub unit: String,
    /// Units left on the phone.
    pub stock: i64,
    /// A picture on the phone.
    #[uniffi(default)]
    pub image_path: Option<String>,
}

impl From<core::Product> for Product {
    fn from(p: core::Product) -> Self {
        Product {
            id: p.id,
            title: p.title,
            price_minor: p.price_minor,
            currency: p.currency,
            unit: p.unit,
            stock: p.stock,
            image_path: p.image_path,
        }
    }
}

impl From<Product> for core::Product {
    fn from(p: Product) -> Self {
        core::Product {
            id: p.id,
            title: p.title,
            price_minor: p.price_minor,
            currency: p.currency,
            unit: p.unit,
            stock: p.stock,
            image_path: p.image_path,
        }
    }
}

/// A sale to record.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NewSale {
    /// The product sold (in the local catalog).
    pub product_id: String,
    /// Units sold, at least 1.
    pub quantity: i64,
    /// Price of one unit in minor units; null takes the product's price.
    #[uniffi(default)]
    pub unit_price_minor: Option<i64>,
    /// The farmer confirmed selling beyond the stock.
    #[uniffi(default)]
    pub allow_oversell: bool,
    /// Who bought.
    #[uniffi(default)]
    pub buyer: Option<String>,
    /// The platform's live session the sale was taken in.
    #[uniffi(default)]
    pub session_id: Option<String>,
}

impl From<NewSale> for core::NewSale {
    fn from(s: NewSale) -> Self {
        core::NewSale {
            product_id: s.product_id,
            quantity: s.quantity,
            unit_price_minor: s.unit_price_minor,
            allow_oversell: s.allow_oversell,
            buyer: s.buyer,
            session_id: s.session_id,
        }
    }
}

/// Where an outbox record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutboxState {
    /// Waiting to be sent.
    Pending,
    /// On the wire.
    InFlight,
    /// Accepted by the platform.
    Synced,
    /// Refused by the platform; show it to the farmer.
    Conflicted,
    /// Dropped by the app after a conflict.
    Discarded,
}

impl From<core::OutboxState> for OutboxState {
    fn from(s: core::OutboxState) -> Self {
        match s {
            core::OutboxState::Pending => OutboxState::Pending,
            core::OutboxState::InFlight => OutboxState::InFlight,
            core::OutboxState::Synced => OutboxState::Synced,
            core::OutboxState::Conflicted => OutboxState::Conflicted,
            core::OutboxState::Discarded => OutboxState::Discarded,
        }
    }
}

/// A recorded sale, on the phone's storage.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Sale {
    /// UUIDv7, also the `Idempotency-Key`.
    pub id: String,
    /// The product sold.
    pub product_id: String,
    /// The live session, if any.
    pub session_id: Option<String>,
    /// Units sold.
    pub quantity: i64,
    /// Price of one unit, minor units.
    pub unit_price_minor: i64,
    /// Currency.
    pub currency: String,
    /// When it was taken, epoch ms.
    pub taken_at_ms: i64,
    /// Sold beyond the stock with the farmer's confirmation.
    pub allow_oversell: bool,
    /// Who bought.
    pub buyer: Option<String>,
    /// Local stock right after the sale.
    pub stock_after: i64,
    /// Where its outbox record is.
    pub sync_state: OutboxState,
}

impl From<core::Sale> for Sale {
    fn from(s: core::Sale) -> Self {
        Sale {
            id: s.id,
            product_id: s.product_id,
            session_id: s.session_id,
            quantity: s.quantity,
            unit_price_minor: s.unit_price_minor,
            currency: s.currency,
            taken_at_ms: epoch_ms(s.taken_at),
            allow_oversell: s.allow_oversell,
            buyer: s.buyer,
            stock_after: s.stock_after,
            sync_state: s.sync_state.into(),
        }
    }
}

/// A product pinned during a live session; with an end, a chapter of the replay.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Pin {
    /// UUIDv7 of the pin.
    pub id: String,
    /// The product shown.
    pub product_id: String,
    /// The platform's live session.
    pub session_id: String,
    /// Start, ms from the stream start.
    pub stream_time_ms: u64,
    /// Start, epoch ms.
    pub wall_time_ms: i64,
    /// End, ms from the stream start, once ended.
    pub ended_stream_time_ms: Option<u64>,
}

impl From<core::Pin> for Pin {
    fn from(p: core::Pin) -> Self {
        Pin {
            id: p.id,
            product_id: p.product_id,
            session_id: p.session_id,
            stream_time_ms: p.stream_time_ms,
            wall_time_ms: epoch_ms(p.wall_time),
            ended_stream_time_ms: p.ended_stream_time_ms,
        }
    }
}

/// How many outbox records are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct OutboxCounts {
    /// Waiting to be sent.
    pub pending: u64,
    /// On the wire.
    pub in_flight: u64,
    /// Accepted by the platform.
    pub synced: u64,
    /// Refused, waiting for the app.
    pub conflicted: u64,
    /// Dropped by the app.
    pub discarded: u64,
}

impl From<core::OutboxCounts> for OutboxCounts {
    fn from(c: core::OutboxCounts) -> Self {
        OutboxCounts {
            pending: c.pending,
            in_flight: c.in_flight,
            synced: c.synced,
            conflicted: c.conflicted,
            discarded: c.discarded,
        }
    }
}

/// The phone's database: catalog, sales, pins and the outbox (SQLite, durable on return).
#[derive(uniffi::Object)]
pub struct Store {
    inner: core::Store,
}

impl Store {
    pub(crate) fn core(&self) -> core::Store {
        self.inner.clone()
    }
}

#[uniffi::export]
impl Store {
    /// Opens (or creates) the database at `path`, applying migrations.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Self>, FieldCastError> {
        Ok(Arc::new(Store {
            inner: core::Store::open(path)?,
        }))
    }

    /// Every product of the local catalog.
    pub fn products(&self) -> Result<Vec<Product>, FieldCastError> {
        let list = core::Catalog::new(self.core()).list()?;
        Ok(list.into_iter().map(Product::from).collect())
    }

    /// One product.
    pub fn product(&self, id: String) -> Result<Product, FieldCastError> {
        Ok(core::Catalog::new(self.core()).get(&id)?.into())
    }

    /// Adds a product or replaces every field of an existing one.
    pub fn upsert_product(&self, product: Product) -> Result<(), FieldCastError> {
        Ok(core::Catalog::new(self.core()).upsert(&product.into())?)
    }

    /// Records a sale with its stock change and outbox record, durably, before returning.
    pub fn record_sale(&self, sale: NewSale) -> Result<Sale, FieldCastError> {
        Ok(core::Sales::new(self.core())
            .record_sale(sale.into())?
            .into())
    }

    /// Every sale, oldest first.
    pub fn sales(&self) -> Result<Vec<Sale>, FieldCastError> {
        let list = core::Sales::new(self.core()).list()?;
        Ok(list.into_iter().map(Sale::from).collect())
    }

    /// One sale.
    pub fn sale(&self, id: String) -> Result<Sale, FieldCastError> {
        Ok(core::Sales::new(self.core()).get(&id)?.into())
    }

    /// The pins of a platform live session.
    pub fn pins(&self, session_id: String) -> Result<Vec<Pin>, FieldCastError> {
        let list = core::Pins::new(self.core()).pins(&session_id)?;
        Ok(list.into_iter().map(Pin::from).collect())
    }

    /// How many outbox records are in each state.
    pub fn outbox_counts(&self) -> Result<OutboxCounts, FieldCastError> {
        Ok(self.inner.outbox_counts()?.into())
    }
}
