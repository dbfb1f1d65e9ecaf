//! One push: the HTTPS client (mutual TLS, HTTP/2 or HTTP/1.1 by ALPN), the request a
//! subscriber receives, and the classification of its outcome — retryable or permanent is
//! decided here, when the failure is created, never later from its text.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::Config;
use crate::store::Delivery;

/// An HTTPS client (HTTP/2 or HTTP/1.1 by ALPN) with a rustls configuration of [`crate::net::tls`].
pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds an HTTPS-only client from a client configuration; hyper-rustls sets ALPN itself from
/// the enabled protocols.
pub fn https_client(tls: &rustls::ClientConfig) -> HttpsClient {
    let mut tls = tls.clone();
    tls.alpn_protocols.clear();
    let mut http = HttpConnector::new();
    // Small request/answer exchanges: Nagle's algorithm would hold them back for delayed ACKs.
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}

/// Why a push failed, and whether trying again can help: decided where the failure happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushFailure {
    /// True when the same push may succeed later (timeouts, connection failures, 5xx, 408, 429).
    pub retryable: bool,
    /// What happened, for the attempt history.
    pub error: String,
}

impl PushFailure {
    fn permanent(error: String) -> Self {
        Self {
            retryable: false,
            error,
        }
    }

    fn retryable(error: String) -> Self {
        Self {
            retryable: true,
            error,
        }
    }
}

/// The outcome of a subscriber's answer: 2xx delivered; 5xx, 408 and 429 worth retrying; any
/// other status a refusal that no retry will change.
pub fn classify(status: StatusCode) -> Result<(), PushFailure> {
    if status.is_success() {
        Ok(())
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Err(PushFailure::retryable(format!("HTTP {status}")))
    } else {
        Err(PushFailure::permanent(format!(
            "HTTP {status}: the receiver refused the message"
        )))
    }
}

/// One HTTPS POST of the event to its subscriber's endpoint, in the subscriber's own format,
/// with the stable `Message-Id` (also the receiver's idempotency key).
pub async fn push(
    client: &HttpsClient,
    config: &Config,
    delivery: &Delivery,
) -> Result<(), PushFailure> {
    let subscriber = delivery.subscriber;
    let adapter = adapters::for_bureau(subscriber)
        .ok_or_else(|| PushFailure::permanent(format!("no adapter for {subscriber}")))?;
    let encoded = adapter
        .encode(&delivery.event)
        .map_err(|e| PushFailure::permanent(format!("cannot encode: {e}")))?;
    let endpoint = config
        .bureaus
        .get(&subscriber)
        .and_then(|b| b.endpoint.clone())
        .ok_or_else(|| PushFailure::permanent(format!("{subscriber} has no push endpoint")))?;
    let message_id = delivery.event.message_id.as_str();
    let request = hyper::Request::post(endpoint)
        .header(hyper::header::CONTENT_TYPE, encoded.content_type)
        .header("message-id", message_id)
        .header("idempotency-key", message_id)
        .header("source-bureau", delivery.event.source.as_str())
        .body(Full::new(Bytes::from(encoded.body)))
        .map_err(|e| PushFailure::permanent(format!("cannot build request: {e}")))?;
    let timeout = Duration::from_secs(config.delivery.request_timeout_seconds);
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => Err(PushFailure::retryable(format!(
            "no answer within {} s",
            timeout.as_secs()
        ))),
        Ok(Err(error)) => Err(PushFailure::retryable(format!(
            "connection failed: {error}"
        ))),
        Ok(Ok(response)) => classify(response.status()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_once() {
        assert_eq!(classify(StatusCode::ACCEPTED), Ok(()));
        for status in [503, 500, 408, 429] {
            let failure = classify(StatusCode::from_u16(status).unwrap()).unwrap_err();
            assert!(failure.retryable, "{status}");
        }
        for status in [400, 403, 404, 422] {
            let failure = classify(StatusCode::from_u16(status).unwrap()).unwrap_err();
            assert!(!failure.retryable, "{status}");
        }
    }
}
