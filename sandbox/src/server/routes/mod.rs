//! The HTTP surface: every route of `docs/api/openapi.yaml`, plus `/v1/_sandbox/...` for QA, the
//! viewer's page under `/watch/...` and the captive portal's stand-in sign-in page.

pub mod live_sessions;
pub mod pin_events;
pub mod products;
pub mod sales;
pub mod sandbox;
pub mod tus;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post, put};
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;
use super::{auth, faults, stats, viewers};

/// The router with its middleware, outermost first: tus headers, request counting, auth, faults.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/live-sessions", post(live_sessions::create))
        .route("/v1/live-sessions/{session_id}", get(live_sessions::fetch))
        .route(
            "/v1/live-sessions/{session_id}/end",
            post(live_sessions::end),
        )
        .route("/v1/products", get(products::list))
        .route(
            "/v1/products/{product_id}",
            get(products::fetch).merge(put(products::replace)),
        )
        .route("/v1/pin-events", post(pin_events::create))
        .route("/v1/sales", post(sales::create).get(sales::list))
        .route("/v1/uploads", post(tus::create).options(tus::discover))
        .route(
            "/v1/uploads/{upload_id}",
            axum::routing::head(tus::offset)
                .patch(tus::append)
                .options(tus::discover),
        )
        .route(
            "/v1/_sandbox/faults",
            post(sandbox::add_fault).delete(sandbox::clear_faults),
        )
        .route("/v1/_sandbox/stats", get(sandbox::stats))
        .route("/v1/_sandbox/reset", post(sandbox::reset))
        .route(faults::LOGIN_PATH, get(faults::login_page))
        .merge(viewers::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), faults::inject))
        .layer(from_fn_with_state(state.clone(), auth::authorize))
        .layer(from_fn_with_state(state.clone(), stats::count_requests))
        .layer(from_fn(tus::resumable_header))
        .with_state(state)
}

async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}: see docs/api/openapi.yaml for the API",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}: see docs/api/openapi.yaml for the methods it takes",
            req.method(),
            req.uri().path()
        ),
    )
}
