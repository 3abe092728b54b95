//! The admin API's client: where the host is, the token that opens it, and
//! one call that turns a non-2xx answer into an error with the host's
//! message. `tools` and `scaffold` both send through it.

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

/// Where the admin API is and the token that opens it.
#[derive(Args, Clone)]
pub struct Remote {
    /// The host's base URL.
    #[arg(long, env = "ONETHING_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The operators' admin token.
    #[arg(long, env = "ONETHING_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// A request body.
pub enum Body {
    /// None.
    None,
    /// Raw bytes (a package, a key file).
    Bytes(Vec<u8>),
    /// JSON.
    Json(Value),
}

/// Calls the admin API; a non-2xx answer becomes an error with the host's
/// message.
pub async fn call(
    remote: &Remote,
    method: reqwest::Method,
    path: &str,
    body: Body,
) -> anyhow::Result<Value> {
    let url = format!("{}{path}", remote.server.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, &url)
        .bearer_auth(&remote.token)
        .timeout(std::time::Duration::from_secs(300));
    request = match body {
        Body::None => request,
        Body::Bytes(bytes) => request
            .header("content-type", "application/octet-stream")
            .body(bytes),
        Body::Json(value) => request.json(&value),
    };
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}: is the host running?"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let code = value["error"]["code"].as_str().unwrap_or("error");
        let message = value["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        bail!("{status} {code}: {message}");
    }
    Ok(value)
}
