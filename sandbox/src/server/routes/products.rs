//! `/v1/products`: the catalog sales and pins refer to.

use axum::Json;
use axum::extract::State;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::server::db::now_rfc3339;
use crate::server::error::ApiError;
use crate::server::state::AppState;
use crate::server::validate::{Fields, JsonObject, PathParam};
use crate::server::viewers::feed::FeedEvent;

/// The longest product id.
const MAX_ID_LEN: usize = 64;

/// A catalog entry as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Product {
    /// The product id, e.g. `orange-box`.
    pub id: String,
    /// What the buyer sees.
    pub title: String,
    /// The current unit price in minor units.
    pub price_minor: i64,
    /// ISO 4217 code of the price.
    pub currency: String,
    /// The selling unit, e.g. `box`.
    pub unit: String,
    /// Units in stock; negative after an allowed oversell.
    pub stock: i64,
    /// A picture, if any.
    pub image_url: Option<String>,
    /// When it was last written.
    pub updated_at: String,
}

const COLUMNS: &str = "id, title, price_minor, currency, unit, stock, image_url, updated_at";

impl Product {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Product {
            id: r.get(0)?,
            title: r.get(1)?,
            price_minor: r.get(2)?,
            currency: r.get(3)?,
            unit: r.get(4)?,
            stock: r.get(5)?,
            image_url: r.get(6)?,
            updated_at: r.get(7)?,
        })
    }

    /// The whole catalog by id.
    pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Product>> {
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM products ORDER BY id"))?;
        let rows = stmt.query_map([], Product::from_row)?;
        rows.collect()
    }

    /// The product with `id`, if the catalog has it.
    pub fn load(conn: &Connection, id: &str) -> rusqlite::Result<Option<Product>> {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM products WHERE id = ?1"),
            [id],
            Product::from_row,
        )
        .optional()
    }
}

/// 422 `unknown_product`, as sales and pin events report it.
pub fn unknown(id: &str) -> ApiError {
    ApiError::unprocessable(
        "unknown_product",
        format!(
            "no product \"{id}\" in the catalog: GET /v1/products lists it, PUT /v1/products/{id} creates it"
        ),
    )
}

/// `GET /v1/products`: the catalog by id.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Product>>, ApiError> {
    let products = state.db.call(|conn| Ok(Product::all(conn)?)).await?;
    Ok(Json(products))
}

/// `GET /v1/products/{product_id}`.
pub async fn fetch(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Product>, ApiError> {
    state
        .db
        .call(move |conn| {
            Product::load(conn, &id)?.ok_or_else(|| {
                ApiError::not_found(format!(
                    "no product \"{id}\": GET /v1/products lists the catalog"
                ))
            })
        })
        .await
        .map(Json)
}

/// `PUT /v1/products/{product_id}`: creates or replaces the whole product.
pub async fn replace(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> Result<Json<Product>, ApiError> {
    if id.chars().count() > MAX_ID_LEN {
        return Err(ApiError::bad_request(
            "invalid_path",
            format!("a product id has at most {MAX_ID_LEN} characters"),
        ));
    }
    let f = Fields::of(&body)?;
    let product = Product {
        title: f.string("title", 1, 200)?.to_owned(),
        price_minor: f.integer("price_minor", 0)?,
        currency: f.currency("currency")?.to_owned(),
        unit: f.string("unit", 0, 50)?.to_owned(),
        stock: f.integer("stock", 0)?,
        image_url: f.optional_string("image_url", 2048)?.map(str::to_owned),
        updated_at: now_rfc3339(),
        id,
    };
    let product = state
        .db
        .call(move |conn| {
            conn.execute(
                &format!(
                    "INSERT OR REPLACE INTO products ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    product.id,
                    product.title,
                    product.price_minor,
                    product.currency,
                    product.unit,
                    product.stock,
                    product.image_url,
                    product.updated_at
                ],
            )?;
            Ok(product)
        })
        .await?;
    state
        .viewers
        .publish(FeedEvent::ProductChanged(product.id.clone()));
    Ok(Json(product))
}
