//! The few platform calls the command makes itself: live sessions and reading back sales.

use fieldcast_core::uplink::target::redact_url;
use serde_json::Value;

/// A live session created on the platform.
pub struct LiveSessionInfo {
    /// The platform's session id.
    pub id: String,
    /// Where to publish: ingest URL + stream key.
    pub publish_url: String,
}

/// A bearer-token client of the platform API.
pub struct Platform {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Platform {
    /// A client of the platform at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: &str) -> Self {
        Platform {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("platform answered {status} with no JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "platform answered {status}: {}",
                body["message"].as_str().unwrap_or("")
            ));
        }
        Ok(body)
    }

    /// Creates a live session and returns where to publish.
    pub async fn create_live_session(&self, title: &str) -> Result<LiveSessionInfo, String> {
        let body = self
            .call(
                self.http
                    .post(format!("{}/v1/live-sessions", self.base))
                    .json(&serde_json::json!({ "title": title })),
            )
            .await?;
        match (body["id"].as_str(), body["publish_url"].as_str()) {
            (Some(id), Some(url)) => Ok(LiveSessionInfo {
                id: id.to_string(),
                publish_url: url.to_string(),
            }),
            _ => Err(format!("unexpected live session: {}", without_key(body))),
        }
    }

    /// Marks a live session ended and returns it (with its pins).
    pub async fn end_live_session(&self, id: &str) -> Result<Value, String> {
        self.call(
            self.http
                .post(format!("{}/v1/live-sessions/{id}/end", self.base)),
        )
        .await
    }

    /// The sales the platform holds for a live session.
    pub async fn sales(&self, session_id: &str) -> Result<Vec<Value>, String> {
        let body = self
            .call(
                self.http
                    .get(format!("{}/v1/sales", self.base))
                    .query(&[("session_id", session_id)]),
            )
            .await?;
        body.as_array()
            .cloned()
            .ok_or_else(|| format!("unexpected sales list: {body}"))
    }
}

/// A live session's JSON for messages: its stream key masked and its publish URL redacted.
fn without_key(mut body: Value) -> Value {
    if let Some(url) = body.get("publish_url").and_then(Value::as_str) {
        body["publish_url"] = redact_url(url).into();
    }
    if body.get("stream_key").is_some() {
        body["stream_key"] = "***".into();
    }
    body
}
