//! A small HTTP client for the REST API (ureq, run off the async runtime).

use serde_json::Value;

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.body))
    }

    /// The stable error code of an error response.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends a request; `body` is sent as JSON when given.
pub async fn request(
    method: &'static str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    let url = url.to_owned();
    let token = token.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let authorization = token.map(|token| format!("Bearer {token}"));
        let result = match (method, body) {
            ("GET", _) => with_auth(agent.get(&url), authorization.as_deref()).call(),
            ("DELETE", _) => with_auth(agent.delete(&url), authorization.as_deref()).call(),
            ("POST", body) => with_auth(agent.post(&url), authorization.as_deref())
                .send_json(body.unwrap_or(Value::Null)),
            ("PUT", body) => with_auth(agent.put(&url), authorization.as_deref())
                .send_json(body.unwrap_or(Value::Null)),
            (other, _) => panic!("unsupported method {other}"),
        };
        let mut response = result.unwrap_or_else(|error| panic!("{method} {url} failed: {error}"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Response { status, body }
    })
    .await
    .expect("http task")
}

fn with_auth<B>(
    request: ureq::RequestBuilder<B>,
    authorization: Option<&str>,
) -> ureq::RequestBuilder<B> {
    match authorization {
        Some(value) => request.header("Authorization", value),
        None => request,
    }
}

/// Sends raw text as a JSON body (for malformed-JSON tests).
pub async fn post_raw(url: &str, token: &str, raw: &str) -> Response {
    post_typed(url, token, "application/json", raw).await
}

/// Sends a raw body with a content type.
pub async fn post_typed(url: &str, token: &str, content_type: &str, raw: &str) -> Response {
    let (url, token, raw, content_type) = (
        url.to_owned(),
        token.to_owned(),
        raw.to_owned(),
        content_type.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .content_type(&content_type)
            .send(raw.as_bytes())
            .expect("post");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Response { status, body }
    })
    .await
    .expect("http task")
}

pub async fn get(url: &str, token: Option<&str>) -> Response {
    request("GET", url, token, None).await
}
