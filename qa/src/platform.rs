//! The few platform calls a QA run makes outside the SDK: live sessions, the stock, and reading
//! back what the platform holds. Blocking; the client's sockets live in the network namespace
//! of the thread that built it.

use std::time::Duration;

use serde_json::{Value, json};

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A live session created on the platform.
pub struct LiveSessionInfo {
    /// The platform's id.
    pub id: String,
    /// Where to publish, as the platform's ingest sees it: `rtmp://HOST:PORT/APP/STREAM_KEY`
    /// (secret: never printed).
    pub publish_url: String,
}

impl LiveSessionInfo {
    /// The publish URL with its host and port replaced by `addr` (`HOST:PORT`): the same ingest
    /// reached another way, e.g. through the network lab.
    pub fn publish_url_via(&self, addr: &str) -> Result<String, String> {
        let invalid = || "the platform's publish URL is not scheme://host/path".to_string();
        let (scheme, rest) = self.publish_url.split_once("://").ok_or_else(invalid)?;
        let (_, path) = rest.split_once('/').ok_or_else(invalid)?;
        Ok(format!("{scheme}://{addr}/{path}"))
    }
}

/// A bearer-token client of the platform API.
pub struct PlatformClient {
    http: reqwest::blocking::Client,
    base: String,
    token: String,
}

impl PlatformClient {
    /// A client of the platform at `base` (e.g. `http://10.77.0.2:PORT`).
    pub fn new(base: &str, token: &str) -> Result<PlatformClient, String> {
        let http = reqwest::blocking::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(PlatformClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    fn call(&self, request: reqwest::blocking::RequestBuilder) -> Result<Value, String> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response
            .json()
            .map_err(|e| format!("the platform answered {status} without JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "the platform answered {status}: {}",
                body["message"]
            ));
        }
        Ok(body)
    }

    /// Creates a live session titled `title`.
    pub fn create_live_session(&self, title: &str) -> Result<LiveSessionInfo, String> {
        let body = self.call(
            self.http
                .post(format!("{}/v1/live-sessions", self.base))
                .json(&json!({ "title": title })),
        )?;
        match (body["id"].as_str(), body["publish_url"].as_str()) {
            (Some(id), Some(url)) => Ok(LiveSessionInfo {
                id: id.to_string(),
                publish_url: url.to_string(),
            }),
            _ => Err("the created live session has no id or publish URL".into()),
        }
    }

    /// A live session as the platform holds it, with its pin events.
    pub fn live_session(&self, id: &str) -> Result<Value, String> {
        self.call(
            self.http
                .get(format!("{}/v1/live-sessions/{id}", self.base)),
        )
    }

    /// Marks a live session ended.
    pub fn end_live_session(&self, id: &str) -> Result<Value, String> {
        self.call(
            self.http
                .post(format!("{}/v1/live-sessions/{id}/end", self.base)),
        )
    }

    /// The sales the platform holds for a live session, in the order it recorded them.
    pub fn sales(&self, session_id: &str) -> Result<Vec<Value>, String> {
        let body = self.call(
            self.http
                .get(format!("{}/v1/sales", self.base))
                .query(&[("session_id", session_id)]),
        )?;
        body.as_array()
            .cloned()
            .ok_or_else(|| format!("the sales are not a list: {body}"))
    }

    /// Sets the stock of every product of the platform's catalog to `stock` (a market day that
    /// does not run out); returns how many products.
    pub fn restock(&self, stock: i64) -> Result<usize, String> {
        let products = self.call(self.http.get(format!("{}/v1/products", self.base)))?;
        let products = products
            .as_array()
            .ok_or_else(|| format!("the products are not a list: {products}"))?;
        for product in products {
            let id = product["id"]
                .as_str()
                .ok_or_else(|| format!("a product without an id: {product}"))?;
            let mut write = product.clone();
            write["stock"] = stock.into();
            self.call(
                self.http
                    .put(format!("{}/v1/products/{id}", self.base))
                    .json(&write),
            )?;
        }
        Ok(products.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publish_url_is_rerouted_keeping_its_path() {
        let live = LiveSessionInfo {
            id: "s".into(),
            publish_url: "rtmp://127.0.0.1:41000/live/0123abcd".into(),
        };
        assert_eq!(
            live.publish_url_via("10.77.0.2:39000").unwrap(),
            "rtmp://10.77.0.2:39000/live/0123abcd"
        );
        let bare = LiveSessionInfo {
            id: "s".into(),
            publish_url: "127.0.0.1/live".into(),
        };
        assert!(bare.publish_url_via("10.77.0.2:1").is_err());
    }
}
