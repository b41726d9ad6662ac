//! Who may spend the gateway's wallet: a call must name a host the gateway answers for (so a
//! web page that rebinds its own domain to this address cannot reach it from a browser), and,
//! with an API key set, carry it as OpenAI clients do (`Authorization: Bearer KEY`).

use super::params::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Host names every gateway answers for: this machine's loopback.
const LOOPBACK: &[&str] = &["localhost", "127.0.0.1", "::1"];

pub(super) struct Access {
    api_key: Option<String>,
    /// Lower-case host names, without ports.
    hosts: Vec<String>,
}

impl Access {
    pub fn new(api_key: Option<String>, extra_hosts: &[String]) -> Self {
        let hosts = LOOPBACK.iter().map(|h| h.to_string()).chain(extra_hosts.iter().map(|h| h.to_ascii_lowercase())).collect();
        Self { api_key, hosts }
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let name = host_name(host).to_ascii_lowercase();
        if !self.hosts.contains(&name) {
            let message = format!(
                "this gateway does not answer for host `{host}` (a web page may be reaching it through DNS rebinding); if the name is yours, start it with --allow-host {name}"
            );
            return Err(ApiError::new(StatusCode::FORBIDDEN, "invalid_request_error", message));
        }
        let Some(key) = &self.api_key else { return Ok(()) };
        let credentials = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.split_once(' '));
        // The scheme's case does not matter (RFC 9110); the key's does.
        let given = credentials.filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map_or("", |(_, key)| key.trim());
        if bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
            return Ok(());
        }
        let message = if given.is_empty() { "no API key: send it as `Authorization: Bearer KEY`" } else { "incorrect API key" };
        Err(ApiError { code: Some("invalid_api_key"), ..ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message) })
    }
}

/// `host` without its port: `[::1]:8080` is `::1`, `localhost:8080` is `localhost`.
fn host_name(host: &str) -> &str {
    if let Some(bracketed) = host.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Refuses a call whose host or key does not pass, before any handler runs.
pub(super) async fn guard(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    match access.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: &str, authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn refused(access: &Access, host: &str, authorization: Option<&str>) -> Option<StatusCode> {
        access.check(&headers(host, authorization)).err().map(|e| e.status)
    }

    #[test]
    fn only_the_hosts_it_answers_for_reach_it() {
        let access = Access::new(None, &["Gateway.example".into()]);
        for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "localhost", "gateway.example:443"] {
            assert_eq!(refused(&access, host, None), None, "{host}");
        }
        for host in ["evil.example:8080", "127.0.0.1.evil.example", "", "[::2]:8080"] {
            assert_eq!(refused(&access, host, None), Some(StatusCode::FORBIDDEN), "{host}");
        }
    }

    #[test]
    fn with_a_key_set_only_its_bearer_gets_in() {
        let access = Access::new(Some("sk-agora".into()), &[]);
        assert_eq!(refused(&access, "localhost:1", Some("Bearer sk-agora")), None);
        assert_eq!(refused(&access, "localhost:1", Some("bearer sk-agora")), None);
        for wrong in [None, Some("Bearer sk-agor"), Some("Bearer sk-agora2"), Some("sk-agora"), Some("Basic sk-agora"), Some("Bearer SK-AGORA")] {
            assert_eq!(refused(&access, "localhost:1", wrong), Some(StatusCode::UNAUTHORIZED), "{wrong:?}");
        }
        // The host is checked first: a rebinding page learns nothing about the key.
        assert_eq!(refused(&access, "evil.example", Some("Bearer sk-agora")), Some(StatusCode::FORBIDDEN));
    }
}
