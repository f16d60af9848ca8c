//! nginx-rtmp's publish notifications (`on_publish`, `on_publish_done`): which stream keys are
//! live. The path carries a secret the sandbox made up at start, so only its nginx is heard.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::server::error::ApiError;
use crate::server::state::AppState;

/// The form fields of a notification that matter here.
#[derive(Debug, Deserialize)]
pub struct Notification {
    /// `publish` or `publish_done`.
    call: String,
    /// The stream key.
    name: String,
}

/// `POST /_ingest/{secret}`: 200 lets nginx accept the publisher (nginx refuses it otherwise).
pub async fn notify(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    Form(notification): Form<Notification>,
) -> Result<StatusCode, ApiError> {
    if secret != *state.ingest_hook {
        return Err(ApiError::not_found("no such ingest hook"));
    }
    let publishing = match notification.call.as_str() {
        "publish" => true,
        "publish_done" => false,
        other => {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("field `call` must be publish or publish_done, got {other}"),
            ));
        }
    };
    log::info!(
        "sandbox: the ingest reports {} for a stream key",
        notification.call
    );
    state.viewers.set_publishing(&notification.name, publishing);
    Ok(StatusCode::OK)
}
