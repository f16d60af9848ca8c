//! Sales taken on the phone. [`Sales::record_sale`] writes the sale, its stock change and its
//! outbox record in one transaction before it returns: an acknowledged sale survives a killed app
//! or a power loss and reaches the platform exactly once (its id is the `Idempotency-Key`).

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use time::OffsetDateTime;

use super::{CommerceError, new_record_id, products};
use crate::store::outbox::{self, OutboxState, RecordKind};
use crate::store::{Store, StoreError, decoded, format_time, parse_time};

/// A sale to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSale {
    /// The product sold (must be in the local catalog).
    pub product_id: String,
    /// Units sold, at least 1.
    pub quantity: i64,
    /// Price of one unit in minor units; `None` takes the product's current price.
    pub unit_price_minor: Option<i64>,
    /// The farmer confirmed selling beyond the stock.
    pub allow_oversell: bool,
    /// Who bought (name or handle), up to 200 characters.
    pub buyer: Option<String>,
    /// The live session the sale was taken in.
    pub session_id: Option<String>,
}

impl NewSale {
    /// `quantity` units of `product_id` at the current price, no oversell, no buyer, no session.
    pub fn new(product_id: impl Into<String>, quantity: i64) -> Self {
        NewSale {
            product_id: product_id.into(),
            quantity,
            unit_price_minor: None,
            allow_oversell: false,
            buyer: None,
            session_id: None,
        }
    }
}

/// A recorded sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    /// UUIDv7; also the `Idempotency-Key` when it is sent.
    pub id: String,
    /// The product sold.
    pub product_id: String,
    /// The live session, if any.
    pub session_id: Option<String>,
    /// Units sold.
    pub quantity: i64,
    /// Price of one unit, minor units.
    pub unit_price_minor: i64,
    /// Currency of the price.
    pub currency: String,
    /// When the sale was taken (UTC).
    pub taken_at: OffsetDateTime,
    /// Sold beyond the stock with the farmer's confirmation.
    pub allow_oversell: bool,
    /// Who bought.
    pub buyer: Option<String>,
    /// Local stock right after this sale.
    pub stock_after: i64,
    /// Where its outbox record is: pending, in flight, synced, conflicted or discarded.
    pub sync_state: OutboxState,
}

impl Sale {
    /// The body of `POST /v1/sales` (the platform's `Sale` schema).
    fn to_platform_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "product_id": self.product_id,
            "session_id": self.session_id,
            "quantity": self.quantity,
            "unit_price_minor": self.unit_price_minor,
            "currency": self.currency,
            "taken_at": format_time(self.taken_at),
            "allow_oversell": self.allow_oversell,
            "buyer": self.buyer,
        })
    }
}

/// The sales book of a store.
#[derive(Debug, Clone)]
pub struct Sales {
    store: Store,
}

impl Sales {
    /// The sales kept in `store`.
    pub fn new(store: Store) -> Self {
        Sales { store }
    }

    /// Records a sale: checks it, takes the stock, queues it for the platform, all in one
    /// transaction that is on the storage when this returns.
    pub fn record_sale(&self, new: NewSale) -> Result<Sale, CommerceError> {
        validate(&new)?;
        self.store.write(|tx| record(tx, new))
    }

    /// One sale.
    pub fn get(&self, id: &str) -> Result<Sale, CommerceError> {
        self.store.read(|conn| {
            let sale = conn
                .prepare_cached(&format!("{SELECT} WHERE s.id = ?1"))?
                .query_row([id], from_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("sale {id}"),
                })?;
            Ok(sale)
        })
    }

    /// Every sale, oldest first.
    pub fn list(&self) -> Result<Vec<Sale>, CommerceError> {
        self.store.read(|conn| list_where(conn, "1", []))
    }

    /// The sales of one live session, oldest first.
    pub fn list_for_session(&self, session_id: &str) -> Result<Vec<Sale>, CommerceError> {
        self.store
            .read(|conn| list_where(conn, "s.session_id = ?1", [session_id]))
    }
}

fn validate(new: &NewSale) -> Result<(), CommerceError> {
    if new.quantity < 1 {
        return Err(CommerceError::InvalidQuantity {
            quantity: new.quantity,
        });
    }
    if new.unit_price_minor.is_some_and(|p| p < 0) {
        return Err(CommerceError::Invalid {
            field: "unit_price_minor",
            reason: "must not be negative".into(),
        });
    }
    if new.buyer.as_ref().is_some_and(|b| b.chars().count() > 200) {
        return Err(CommerceError::Invalid {
            field: "buyer",
            reason: "must be at most 200 characters".into(),
        });
    }
    if new.session_id.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(CommerceError::Invalid {
            field: "session_id",
            reason: "must not be empty (leave it out for a sale outside a session)".into(),
        });
    }
    Ok(())
}

fn record(tx: &Transaction<'_>, new: NewSale) -> Result<Sale, CommerceError> {
    let product =
        products::find(tx, &new.product_id)?.ok_or_else(|| CommerceError::UnknownProduct {
            product_id: new.product_id.clone(),
        })?;
    if product.stock < new.quantity && !new.allow_oversell {
        return Err(CommerceError::InsufficientStock {
            product_id: product.id,
            available: product.stock,
            requested: new.quantity,
        });
    }
    let stock_after =
        product
            .stock
            .checked_sub(new.quantity)
            .ok_or(CommerceError::InvalidQuantity {
                quantity: new.quantity,
            })?;
    let sale = Sale {
        id: new_record_id(),
        product_id: product.id,
        session_id: new.session_id,
        quantity: new.quantity,
        unit_price_minor: new.unit_price_minor.unwrap_or(product.price_minor),
        currency: product.currency,
        taken_at: OffsetDateTime::now_utc(),
        allow_oversell: new.allow_oversell,
        buyer: new.buyer,
        stock_after,
        sync_state: OutboxState::Pending,
    };
    let taken_at = format_time(sale.taken_at);
    tx.execute(
        "INSERT INTO sales (id, product_id, session_id, quantity, unit_price_minor, currency,
                            taken_at, allow_oversell, buyer, stock_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            sale.id,
            sale.product_id,
            sale.session_id,
            sale.quantity,
            sale.unit_price_minor,
            sale.currency,
            taken_at,
            sale.allow_oversell,
            sale.buyer,
            sale.stock_after
        ],
    )?;
    tx.execute(
        "UPDATE products SET stock = ?2 WHERE id = ?1",
        params![sale.product_id, sale.stock_after],
    )?;
    outbox::enqueue(
        tx,
        &sale.id,
        RecordKind::Sale,
        &sale.product_id,
        &sale.to_platform_json(),
        &taken_at,
    )?;
    Ok(sale)
}

/// Gives back the stock a sale took (used when a refused sale is discarded).
pub(crate) fn restore_stock(tx: &Transaction<'_>, sale_id: &str) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE products SET stock = stock + (SELECT quantity FROM sales WHERE id = ?1)
         WHERE id = (SELECT product_id FROM sales WHERE id = ?1)",
        [sale_id],
    )?;
    Ok(())
}

const SELECT: &str = "SELECT s.id, s.product_id, s.session_id, s.quantity, s.unit_price_minor,
        s.currency, s.taken_at, s.allow_oversell, s.buyer, s.stock_after, o.state
    FROM sales s JOIN outbox o ON o.record_id = s.id";

fn list_where<P: rusqlite::Params>(
    conn: &Connection,
    condition: &str,
    params: P,
) -> Result<Vec<Sale>, CommerceError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE {condition} ORDER BY o.seq"))?;
    let sales = stmt
        .query_map(params, from_row)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::from)?;
    Ok(sales)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Sale> {
    let taken_at: String = row.get(6)?;
    let state: String = row.get(10)?;
    Ok(Sale {
        id: row.get(0)?,
        product_id: row.get(1)?,
        session_id: row.get(2)?,
        quantity: row.get(3)?,
        unit_price_minor: row.get(4)?,
        currency: row.get(5)?,
        taken_at: decoded(6, parse_time("sale taken_at", &taken_at))?,
        allow_oversell: row.get(7)?,
        buyer: row.get(8)?,
        stock_after: row.get(9)?,
        sync_state: decoded(10, OutboxState::parse(&state))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::Catalog;
    use crate::commerce::testing::store_with_oranges;
    use crate::store::outbox::{counts, open_items};

    #[test]
    fn a_sale_writes_sale_stock_and_outbox_together() {
        let (_dir, store) = store_with_oranges();
        let sales = Sales::new(store.clone());
        let sale = sales
            .record_sale(NewSale {
                buyer: Some("Wanjiru".into()),
                session_id: Some("live-1".into()),
                ..NewSale::new("orange-box", 3)
            })
            .unwrap();
        assert_eq!(sale.unit_price_minor, 1250, "current price by default");
        assert_eq!(sale.currency, "KES");
        assert_eq!(sale.stock_after, 7);
        assert_eq!(sales.get(&sale.id).unwrap(), sale);
        assert_eq!(
            Catalog::new(store.clone()).get("orange-box").unwrap().stock,
            7
        );
        let items = store.read(open_items).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].record_id, sale.id);
        assert_eq!(items[0].order_key, "orange-box");
        assert_eq!(items[0].kind, RecordKind::Sale);
        let envelope = store
            .read(|c| outbox::envelope(c, &sale.id))
            .expect("envelope");
        let body: serde_json::Value = serde_json::from_str(&envelope.body).unwrap();
        assert_eq!(body["id"], sale.id.as_str());
        assert_eq!(body["quantity"], 3);
        assert_eq!(body["unit_price_minor"], 1250);
        assert_eq!(body["buyer"], "Wanjiru");
        assert_eq!(body["session_id"], "live-1");
        assert_eq!(body["allow_oversell"], false);
        assert_eq!(
            body["taken_at"].as_str().unwrap(),
            format_time(sale.taken_at)
        );
    }

    #[test]
    fn oversell_is_refused_unless_confirmed() {
        let (_dir, store) = store_with_oranges();
        let sales = Sales::new(store.clone());
        sales.record_sale(NewSale::new("orange-box", 8)).unwrap();
        assert_eq!(
            sales.record_sale(NewSale::new("orange-box", 3)),
            Err(CommerceError::InsufficientStock {
                product_id: "orange-box".into(),
                available: 2,
                requested: 3
            })
        );
        assert_eq!(
            sales.list().unwrap().len(),
            1,
            "the refused sale left nothing"
        );
        assert_eq!(store.read(counts).unwrap().pending, 1);
        let over = sales
            .record_sale(NewSale {
                allow_oversell: true,
                ..NewSale::new("orange-box", 3)
            })
            .unwrap();
        assert_eq!(over.stock_after, -1);
        assert!(over.allow_oversell);
    }

    #[test]
    fn invalid_sales_are_typed_errors_and_write_nothing() {
        let (_dir, store) = store_with_oranges();
        let sales = Sales::new(store.clone());
        assert_eq!(
            sales.record_sale(NewSale::new("orange-box", 0)),
            Err(CommerceError::InvalidQuantity { quantity: 0 })
        );
        assert_eq!(
            sales.record_sale(NewSale::new("orange-box", -2)),
            Err(CommerceError::InvalidQuantity { quantity: -2 })
        );
        assert_eq!(
            sales.record_sale(NewSale::new("mango", 1)),
            Err(CommerceError::UnknownProduct {
                product_id: "mango".into()
            })
        );
        let negative_price = NewSale {
            unit_price_minor: Some(-5),
            ..NewSale::new("orange-box", 1)
        };
        assert!(matches!(
            sales.record_sale(negative_price),
            Err(CommerceError::Invalid {
                field: "unit_price_minor",
                ..
            })
        ));
        let long_buyer = NewSale {
            buyer: Some("x".repeat(201)),
            ..NewSale::new("orange-box", 1)
        };
        assert!(matches!(
            sales.record_sale(long_buyer),
            Err(CommerceError::Invalid { field: "buyer", .. })
        ));
        assert!(sales.list().unwrap().is_empty());
        assert_eq!(store.read(counts).unwrap(), Default::default());
        assert_eq!(Catalog::new(store).get("orange-box").unwrap().stock, 10);
    }

    #[test]
    fn an_explicit_price_is_kept_and_sessions_filter() {
        let (_dir, store) = store_with_oranges();
        let sales = Sales::new(store);
        let a = sales
            .record_sale(NewSale {
                unit_price_minor: Some(900),
                session_id: Some("s1".into()),
                ..NewSale::new("orange-box", 1)
            })
            .unwrap();
        let b = sales.record_sale(NewSale::new("orange-box", 1)).unwrap();
        assert_eq!(a.unit_price_minor, 900);
        assert_eq!(sales.list().unwrap(), vec![a.clone(), b]);
        assert_eq!(sales.list_for_session("s1").unwrap(), vec![a]);
    }

    #[test]
    fn an_unreadable_stored_value_is_a_decode_error() {
        let (_dir, store) = store_with_oranges();
        let sales = Sales::new(store.clone());
        let sale = sales.record_sale(NewSale::new("orange-box", 1)).unwrap();
        store
            .write(|tx| {
                tx.execute("UPDATE sales SET taken_at = 'yesterday'", [])
                    .map_err(StoreError::from)
            })
            .unwrap();
        match sales.get(&sale.id) {
            Err(CommerceError::Store(StoreError::Decode { message })) => {
                assert!(message.contains("yesterday"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
