//! `/v1/sales`: sales taken on the phone, recorded once with their stock change.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::json;

use super::live_sessions::{self, LiveSession};
use super::products::{self, Product};
use crate::server::client_clock::ClockSkew;
use crate::server::db::now_rfc3339;
use crate::server::error::ApiError;
use crate::server::faults::Slowdown;
use crate::server::idempotency::{self, IdempotencyKey};
use crate::server::state::AppState;
use crate::server::validate::{Fields, JsonObject};
use crate::server::viewers::feed::FeedEvent;

/// A sale as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Sale {
    id: String,
    product_id: String,
    session_id: Option<String>,
    quantity: i64,
    unit_price_minor: i64,
    currency: String,
    taken_at: String,
    allow_oversell: bool,
    buyer: Option<String>,
    /// The phone's clock minus the platform's when the sale arrived (ms), from its `Date`.
    client_clock_skew_ms: Option<i64>,
}

const COLUMNS: &str = "id, product_id, session_id, quantity, unit_price_minor, currency, taken_at, allow_oversell, buyer, client_clock_skew_ms";

impl Sale {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Sale {
            id: r.get(0)?,
            product_id: r.get(1)?,
            session_id: r.get(2)?,
            quantity: r.get(3)?,
            unit_price_minor: r.get(4)?,
            currency: r.get(5)?,
            taken_at: r.get(6)?,
            allow_oversell: r.get(7)?,
            buyer: r.get(8)?,
            client_clock_skew_ms: r.get(9)?,
        })
    }

    /// The sale with `id`, if recorded.
    pub fn load(conn: &Connection, id: &str) -> rusqlite::Result<Option<Sale>> {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM sales WHERE id = ?1"),
            [id],
            Sale::from_row,
        )
        .optional()
    }

    /// Every sale in the order recorded, or only those of one live session.
    pub fn list(conn: &Connection, session_id: Option<&str>) -> rusqlite::Result<Vec<Sale>> {
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM sales WHERE ?1 IS NULL OR session_id = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([session_id], Sale::from_row)?;
        rows.collect()
    }

    /// The sale of a request body; `taken_at` is the phone's, whatever its clock says.
    fn from_json(fields: &Fields<'_>, skew: ClockSkew) -> Result<Sale, ApiError> {
        Ok(Sale {
            id: fields.string("id", 1, 255)?.to_owned(),
            product_id: fields.string("product_id", 1, 64)?.to_owned(),
            session_id: fields
                .optional_string("session_id", 255)?
                .map(str::to_owned),
            quantity: fields.integer("quantity", 1)?,
            unit_price_minor: fields.integer("unit_price_minor", 0)?,
            currency: fields.currency("currency")?.to_owned(),
            taken_at: fields.timestamp("taken_at")?.to_owned(),
            allow_oversell: fields.flag("allow_oversell")?,
            buyer: fields.optional_string("buyer", 200)?.map(str::to_owned),
            client_clock_skew_ms: skew.0,
        })
    }

    /// Checks the sale against the catalog and records it with its stock change; the new stock.
    fn record(&self, conn: &Connection) -> Result<i64, ApiError> {
        let product = Product::load(conn, &self.product_id)?
            .ok_or_else(|| products::unknown(&self.product_id))?;
        if let Some(session) = &self.session_id
            && !LiveSession::exists(conn, session)?
        {
            return Err(live_sessions::unknown(session));
        }
        if self.currency != product.currency {
            return Err(ApiError::unprocessable(
                "currency_mismatch",
                format!(
                    "{} is priced in {}, the sale is in {}: record the sale in the product's currency",
                    product.id, product.currency, self.currency
                ),
            ));
        }
        if self.unit_price_minor != product.price_minor {
            return Err(ApiError::conflict(
                "price_changed",
                format!(
                    "the price of {} is now {} {} (minor units), the sale says {}: show the farmer the new price",
                    product.id, product.price_minor, product.currency, self.unit_price_minor
                ),
            ));
        }
        if self.quantity > product.stock && !self.allow_oversell {
            return Err(ApiError::conflict(
                "oversold",
                format!(
                    "only {} {} left of {}, the sale asks for {}: sell less, or set allow_oversell if the farmer sold beyond stock",
                    product.stock.max(0),
                    product.unit,
                    product.id,
                    self.quantity
                ),
            ));
        }
        let stock_after = product.stock.checked_sub(self.quantity).ok_or_else(|| {
            ApiError::conflict(
                "oversold",
                format!(
                    "quantity {} would overflow the stock of {}",
                    self.quantity, product.id
                ),
            )
        })?;
        conn.execute(
            &format!(
                "INSERT INTO sales ({COLUMNS}, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                self.id,
                self.product_id,
                self.session_id,
                self.quantity,
                self.unit_price_minor,
                self.currency,
                self.taken_at,
                self.allow_oversell,
                self.buyer,
                self.client_clock_skew_ms,
                now_rfc3339()
            ],
        )?;
        conn.execute(
            "UPDATE products SET stock = ?2, updated_at = ?3 WHERE id = ?1",
            params![product.id, stock_after, now_rfc3339()],
        )?;
        Ok(stock_after)
    }
}

/// `POST /v1/sales`: 201 `{sale, stock_after}`; 409 `oversold` / `price_changed`; 422 for an
/// unknown product or session or another currency.
pub async fn create(
    State(state): State<AppState>,
    Slowdown(slow): Slowdown,
    skew: ClockSkew,
    key: IdempotencyKey,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let sale = Sale::from_json(&Fields::of(&body)?, skew)?;
    let id = sale.id.clone();
    let recorded = FeedEvent::SaleRecorded {
        sale_id: sale.id.clone(),
        session_id: sale.session_id.clone(),
        product_id: sale.product_id.clone(),
    };
    let outcome = idempotency::process(&state, "sales", key, &body, &id, slow, move |conn| {
        let stock_after = sale.record(conn)?;
        Ok((
            StatusCode::CREATED,
            json!({ "sale": sale, "stock_after": stock_after }),
        ))
    })
    .await?;
    if outcome.created() {
        state.stats.sale_recorded();
        state.viewers.publish(recorded);
    }
    Ok(outcome.into_response())
}

/// `GET /v1/sales[?session_id=...]`: in the order they were recorded.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<Sale>>, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::bad_request("invalid_query", format!("bad query string: {e}")))?;
    let session = query.get("session_id").cloned();
    let sales = state
        .db
        .call(move |conn| Ok(Sale::list(conn, session.as_deref())?))
        .await?;
    Ok(Json(sales))
}
