//! The local catalog: what the farmer sells, with price and stock, usable offline.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{CommerceError, validate_currency};
use crate::store::{Store, StoreError, now_rfc3339};

/// A product of the local catalog. Money is integer minor units plus a currency code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Stable id shared with the platform (1-64 characters), e.g. `orange-box`.
    pub id: String,
    /// Name shown to buyers.
    pub title: String,
    /// Price of one unit in minor units (cents).
    pub price_minor: i64,
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
    /// What one unit is (`box`, `kg`…).
    pub unit: String,
    /// Units left on the phone; below zero only after a confirmed oversell.
    pub stock: i64,
    /// A picture on the phone; local only, kept when the catalog is refreshed.
    pub image_path: Option<String>,
}

/// A product as the platform's `GET /v1/products` returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RemoteProduct {
    /// Product id.
    pub id: String,
    /// Name.
    pub title: String,
    /// Price in minor units.
    pub price_minor: i64,
    /// Currency code.
    pub currency: String,
    /// Unit.
    pub unit: String,
    /// The platform's stock.
    pub stock: i64,
}

/// The local catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    store: Store,
}

impl Catalog {
    /// The catalog kept in `store`.
    pub fn new(store: Store) -> Self {
        Catalog { store }
    }

    /// Adds a product or replaces every field of an existing one.
    pub fn upsert(&self, product: &Product) -> Result<(), CommerceError> {
        validate(product)?;
        self.store.write(|tx| {
            tx.execute(
                "INSERT INTO products (id, title, price_minor, currency, unit, stock, image_path, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title,
                    price_minor = excluded.price_minor, currency = excluded.currency,
                    unit = excluded.unit, stock = excluded.stock,
                    image_path = excluded.image_path, updated_at = excluded.updated_at",
                params![
                    product.id,
                    product.title,
                    product.price_minor,
                    product.currency,
                    product.unit,
                    product.stock,
                    product.image_path,
                    now_rfc3339()
                ],
            )?;
            Ok(())
        })
    }

    /// One product.
    pub fn get(&self, id: &str) -> Result<Product, CommerceError> {
        self.store
            .read(|conn| find(conn, id))?
            .ok_or_else(|| CommerceError::UnknownProduct {
                product_id: id.to_string(),
            })
    }

    /// Every product, by id.
    pub fn list(&self) -> Result<Vec<Product>, CommerceError> {
        self.store.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY id"))?;
            let products = stmt
                .query_map([], from_row)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from)?;
            Ok(products)
        })
    }

    /// Takes the platform's catalog: title, price, currency and unit are replaced; the local
    /// `image_path` is kept; the stock becomes the platform's minus the sales the platform has not
    /// counted but the phone still holds (pending, in flight, or conflicted and not yet
    /// discarded), so a refresh never hands back units already sold on the phone. Products only
    /// known locally stay. Returns how many products were written.
    pub fn apply_remote(&self, products: &[RemoteProduct]) -> Result<usize, CommerceError> {
        for p in products {
            validate(&Product {
                id: p.id.clone(),
                title: p.title.clone(),
                price_minor: p.price_minor,
                currency: p.currency.clone(),
                unit: p.unit.clone(),
                stock: p.stock,
                image_path: None,
            })?;
        }
        self.store.write(|tx| {
            let now = now_rfc3339();
            let mut stmt = tx.prepare_cached(
                "INSERT INTO products (id, title, price_minor, currency, unit, stock, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6 - (
                    SELECT COALESCE(SUM(s.quantity), 0) FROM sales s
                    JOIN outbox o ON o.record_id = s.id
                    WHERE s.product_id = ?1 AND o.state IN ('pending', 'in_flight', 'conflicted')), ?7)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title,
                    price_minor = excluded.price_minor, currency = excluded.currency,
                    unit = excluded.unit, stock = excluded.stock, updated_at = excluded.updated_at",
            )?;
            for p in products {
                stmt.execute(params![
                    p.id,
                    p.title,
                    p.price_minor,
                    p.currency,
                    p.unit,
                    p.stock,
                    now
                ])?;
            }
            Ok(products.len())
        })
    }
}

const SELECT: &str =
    "SELECT id, title, price_minor, currency, unit, stock, image_path FROM products";

/// One product, read inside any connection or transaction.
pub(crate) fn find(conn: &Connection, id: &str) -> Result<Option<Product>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id: row.get(0)?,
        title: row.get(1)?,
        price_minor: row.get(2)?,
        currency: row.get(3)?,
        unit: row.get(4)?,
        stock: row.get(5)?,
        image_path: row.get(6)?,
    })
}

fn validate(p: &Product) -> Result<(), CommerceError> {
    let invalid = |field, reason: &str| {
        Err(CommerceError::Invalid {
            field,
            reason: reason.to_string(),
        })
    };
    if p.id.is_empty() || p.id.chars().count() > 64 {
        return invalid("product id", "must be 1 to 64 characters");
    }
    if p.title.trim().is_empty() || p.title.chars().count() > 200 {
        return invalid("title", "must be 1 to 200 characters");
    }
    if p.price_minor < 0 {
        return invalid("price_minor", "must not be negative");
    }
    if p.unit.trim().is_empty() {
        return invalid("unit", "must not be empty (e.g. `box`)");
    }
    if p.stock < 0 {
        return invalid("stock", "must not be negative");
    }
    validate_currency(&p.currency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::testing::oranges;
    use crate::commerce::{NewSale, Sales};

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("fc.db")).unwrap();
        (dir, Catalog::new(store))
    }

    #[test]
    fn upsert_get_list_work_offline() {
        let (_dir, catalog) = catalog();
        catalog.upsert(&oranges()).unwrap();
        assert_eq!(catalog.get("orange-box").unwrap(), oranges());
        let mut cheaper = oranges();
        cheaper.price_minor = 1000;
        catalog.upsert(&cheaper).unwrap();
        assert_eq!(catalog.list().unwrap(), vec![cheaper]);
        assert!(matches!(
            catalog.get("mango"),
            Err(CommerceError::UnknownProduct { .. })
        ));
    }

    #[test]
    fn invalid_products_are_refused_with_the_field() {
        let (_dir, catalog) = catalog();
        let refused_field = |p: Product| match catalog.upsert(&p) {
            Err(CommerceError::Invalid { field, .. }) => field,
            other => panic!("{p:?}: {other:?}"),
        };
        let currency = Product {
            currency: "kes".into(),
            ..oranges()
        };
        assert_eq!(refused_field(currency), "currency");
        let price = Product {
            price_minor: -1,
            ..oranges()
        };
        assert_eq!(refused_field(price), "price_minor");
        let id = Product {
            id: String::new(),
            ..oranges()
        };
        assert_eq!(refused_field(id), "product id");
        let title = Product {
            title: " ".into(),
            ..oranges()
        };
        assert_eq!(refused_field(title), "title");
        let stock = Product {
            stock: -3,
            ..oranges()
        };
        assert_eq!(refused_field(stock), "stock");
        let unit = Product {
            unit: String::new(),
            ..oranges()
        };
        assert_eq!(refused_field(unit), "unit");
        assert!(catalog.list().unwrap().is_empty());
    }

    #[test]
    fn remote_catalog_replaces_fields_keeps_image_and_unsent_sales() {
        let (_dir, catalog) = catalog();
        catalog.upsert(&oranges()).unwrap();
        let sales = Sales::new(catalog.store.clone());
        sales
            .record_sale(NewSale::new("orange-box", 3))
            .expect("sale");
        let remote = RemoteProduct {
            id: "orange-box".into(),
            title: "Oranges (Valencia)".into(),
            price_minor: 1300,
            currency: "KES".into(),
            unit: "box".into(),
            stock: 40,
        };
        let mango = RemoteProduct {
            id: "mango-crate".into(),
            stock: 5,
            ..remote.clone()
        };
        assert_eq!(catalog.apply_remote(&[remote, mango]).unwrap(), 2);
        let got = catalog.get("orange-box").unwrap();
        assert_eq!(got.title, "Oranges (Valencia)");
        assert_eq!(got.price_minor, 1300);
        assert_eq!(got.image_path, oranges().image_path);
        assert_eq!(got.stock, 37, "40 on the platform minus 3 not yet synced");
        assert_eq!(catalog.get("mango-crate").unwrap().stock, 5);
    }
}
