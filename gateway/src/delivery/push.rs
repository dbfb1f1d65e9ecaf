//! One push: the HTTPS client (mutual TLS, HTTP/2 or HTTP/1.1 by ALPN), the request a
//! subscriber receives, and the classification of its outcome — retryable or permanent is
//! decided here, when the failure is created, never later from its text.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::batch::{BATCH_ID_HEADER, BatchResults, ItemResult};
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

/// The subscriber's adapter and push endpoint; missing ones are permanent failures (a
/// configuration the gateway was started with, not something a retry changes).
fn destination(
    config: &Config,
    subscriber: schemas::BureauId,
) -> Result<(&'static dyn adapters::Adapter, String), PushFailure> {
    let adapter = adapters::for_bureau(subscriber)
        .ok_or_else(|| PushFailure::permanent(format!("no adapter for {subscriber}")))?;
    let endpoint = config
        .bureaus
        .get(&subscriber)
        .and_then(|b| b.endpoint.clone())
        .ok_or_else(|| PushFailure::permanent(format!("{subscriber} has no push endpoint")))?;
    Ok((adapter, endpoint))
}

/// One HTTPS POST of the event to its subscriber's endpoint, in the subscriber's own format,
/// with the stable `Message-Id` (also the receiver's idempotency key).
pub async fn push(
    client: &HttpsClient,
    config: &Config,
    delivery: &Delivery,
) -> Result<(), PushFailure> {
    let (adapter, endpoint) = destination(config, delivery.subscriber)?;
    let encoded = adapter
        .encode(&delivery.event)
        .map_err(|e| PushFailure::permanent(format!("cannot encode: {e}")))?;
    let message_id = delivery.event.message_id.as_str();
    let mut request = hyper::Request::post(endpoint)
        .header(hyper::header::CONTENT_TYPE, encoded.content_type)
        .header("message-id", message_id)
        .header("idempotency-key", message_id)
        .header("source-bureau", delivery.event.source.as_str());
    // The format's own headers (a SOAP service's SOAPAction).
    // A listed applicant's case: the warning the receiving bureau can act on.
    if let Some(warning) = schemas::credit::warning_header(&delivery.event.credit_warnings) {
        request = request.header(schemas::credit::WARNING_HEADER, warning);
    }
    for (name, value) in adapter.message_headers(&delivery.event) {
        request = request.header(name, value);
    }
    let request = request
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

/// Largest results document read from a batch receiver: room for a long detail per item.
fn results_limit(items: usize) -> usize {
    16 * 1024 + items * 1024
}

/// One HTTPS POST of several deliveries to one subscriber in its batch form (see
/// [`super::batch`]): `Err` when the whole batch failed, else one outcome per delivery, in order.
pub async fn push_batch(
    client: &HttpsClient,
    config: &Config,
    batch_id: &str,
    deliveries: &[Delivery],
) -> Result<Vec<Result<(), PushFailure>>, PushFailure> {
    let Some(subscriber) = deliveries.first().map(|d| d.subscriber) else {
        return Ok(Vec::new());
    };
    let (adapter, endpoint) = destination(config, subscriber)?;
    let events: Vec<schemas::Event> = deliveries.iter().map(|d| d.event.clone()).collect();
    let encoded = adapter
        .encode_batch(batch_id, &events)
        .map_err(|e| PushFailure::permanent(format!("cannot encode: {e}")))?;
    let request = hyper::Request::post(endpoint)
        .header(hyper::header::CONTENT_TYPE, encoded.content_type)
        .header(BATCH_ID_HEADER, batch_id)
        .body(Full::new(Bytes::from(encoded.body)))
        .map_err(|e| PushFailure::permanent(format!("cannot build request: {e}")))?;
    let timeout = Duration::from_secs(config.delivery.request_timeout_seconds);
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|error| PushFailure::retryable(format!("connection failed: {error}")))?;
        classify(response.status())?;
        let json = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        let body = Limited::new(response.into_body(), results_limit(deliveries.len()))
            .collect()
            .await
            .map_err(|error| {
                PushFailure::retryable(format!("cannot read the batch results: {error}"))
            })?
            .to_bytes();
        Ok::<_, PushFailure>((json, body))
    };
    let (json, body) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| {
            PushFailure::retryable(format!("no answer within {} s", timeout.as_secs()))
        })??;
    if !json || body.is_empty() {
        return Ok(deliveries.iter().map(|_| Ok(())).collect());
    }
    // A receiver that garbles its answer may have stored some items: sending all again is
    // what at-least-once allows.
    let results: BatchResults = serde_json::from_slice(&body).map_err(|error| {
        PushFailure::retryable(format!("the batch results are not readable: {error}"))
    })?;
    let by_id: HashMap<&str, &ItemResult> = results
        .results
        .iter()
        .map(|r| (r.message_id.as_str(), r))
        .collect();
    Ok(deliveries
        .iter()
        .map(|delivery| {
            let Some(item) = by_id.get(delivery.event.message_id.as_str()) else {
                return Err(PushFailure::retryable(format!(
                    "batch {batch_id}: the receiver's results do not mention this delivery"
                )));
            };
            let status = StatusCode::from_u16(item.status).map_err(|_| {
                PushFailure::retryable(format!(
                    "batch {batch_id}: status {} is not an HTTP status",
                    item.status
                ))
            })?;
            classify(status).map_err(|failure| PushFailure {
                error: match &item.detail {
                    Some(detail) => format!("{} in batch {batch_id}: {detail}", failure.error),
                    None => format!("{} in batch {batch_id}", failure.error),
                },
                ..failure
            })
        })
        .collect())
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
