//! A bureau system's client of the gateway: mutual TLS with its certificate (or an operator's,
//! a stranger's, or none), the exchange's API calls — send a message, pull and acknowledge the
//! feed, publish a survey result, read results and files — and raw requests, whole or
//! streamed, for whatever else a test wants to try.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, StatusCode};
use schemas::{BureauId, Event};

use super::error::SimError;
use super::upload::{UploadFile, credit_upload, survey_upload};
use crate::delivery::{HttpsClient, https_client};
use crate::net::pki::PkiLayout;

/// How long a request waits for its answer unless [`BureauClient::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON of type `T`; `what` names the answer in the error.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, SimError> {
        serde_json::from_slice(&self.body).map_err(|source| SimError::Json {
            what: what.to_owned(),
            source,
        })
    }

    /// `Ok(self)` if the status is `expected`, else an error naming `what` with the start of
    /// the body.
    pub fn expect_status(self, what: &str, expected: StatusCode) -> Result<Self, SimError> {
        if self.status == expected {
            return Ok(self);
        }
        let text = String::from_utf8_lossy(&self.body);
        Err(SimError::Status {
            what: what.to_owned(),
            status: self.status,
            body: text.chars().take(300).collect(),
        })
    }
}

/// One batch of a pull bureau's feed.
#[derive(Debug)]
pub struct Feed {
    /// The events, decoded in the bureau's own format.
    pub events: Vec<Event>,
    /// What to acknowledge them with ([`BureauClient::ack`]).
    pub cursor: Option<String>,
}

/// A request body sent as it is produced (e.g. a large upload generated on the fly).
pub type StreamingBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// An HTTPS client whose request bodies stream.
type StreamingClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    StreamingBody,
>;

/// Like [`https_client`], for streaming request bodies (one connection pool each: the body
/// type is part of a hyper client's type).
fn streaming_client(tls: &rustls::ClientConfig) -> StreamingClient {
    let mut tls = tls.clone();
    // hyper-rustls sets ALPN from the enabled versions and refuses a config that already has it.
    tls.alpn_protocols.clear();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_all_versions()
        .build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}

/// An HTTPS client of the gateway with some identity (or none).
pub struct BureauClient {
    bureau: Option<BureauId>,
    client: HttpsClient,
    streaming: StreamingClient,
    base: String,
    timeout: Duration,
}

impl BureauClient {
    /// A bureau's system, with its certificate from `pki`.
    pub fn new(pki: &PkiLayout, gateway: SocketAddr, bureau: BureauId) -> Result<Self, SimError> {
        let (cert, key) = pki.bureau(bureau);
        let mut client = Self::with_identity(&pki.ca, &cert, &key, gateway)?;
        client.bureau = Some(bureau);
        Ok(client)
    }

    /// An operator, with the operator certificate from `pki`.
    pub fn operator(pki: &PkiLayout, gateway: SocketAddr) -> Result<Self, SimError> {
        let (cert, key) = pki.operator();
        Self::with_identity(&pki.ca, &cert, &key, gateway)
    }

    /// Trusts `ca` for the server and presents `cert`/`key` (whatever identity they name).
    pub fn with_identity(
        ca: &Path,
        cert: &Path,
        key: &Path,
        gateway: SocketAddr,
    ) -> Result<Self, SimError> {
        let tls = crate::net::tls::client_config(ca, cert, key)?;
        Ok(Self::with_tls(&tls, gateway))
    }

    /// Trusts `ca` for the server and presents no client certificate.
    pub fn anonymous(ca: &Path, gateway: SocketAddr) -> Result<Self, SimError> {
        let tls = crate::net::tls::client_config_without_identity(ca)?;
        Ok(Self::with_tls(&tls, gateway))
    }

    fn with_tls(tls: &rustls::ClientConfig, gateway: SocketAddr) -> Self {
        Self {
            bureau: None,
            client: https_client(tls),
            streaming: streaming_client(tls),
            base: format!("https://{gateway}"),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Waits at most `timeout` for each answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bureau whose system this is, if it is one.
    pub fn bureau(&self) -> Option<BureauId> {
        self.bureau
    }

    fn adapter(&self) -> Result<(BureauId, &'static dyn adapters::Adapter), SimError> {
        let bureau = self.bureau.ok_or(SimError::NotABureau)?;
        let adapter = adapters::for_bureau(bureau).ok_or(SimError::NoAdapter(bureau))?;
        Ok((bureau, adapter))
    }

    /// Sends a request and reads the answer whole; `Err` for a connection or TLS failure, a
    /// timeout or a broken body, never for a status.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Reply, SimError> {
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body.into()))
            .map_err(|source| SimError::Request {
                method: method.clone(),
                path: path.to_owned(),
                source,
            })?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| SimError::Timeout {
                method: method.clone(),
                path: path.to_owned(),
                seconds: self.timeout.as_secs(),
            })?
            .map_err(|source| SimError::Connection {
                method: method.clone(),
                path: path.to_owned(),
                source,
            })?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|source| SimError::Body {
                method,
                path: path.to_owned(),
                source,
            })?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Reply, SimError> {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }

    /// `POST path` with `body` as `content_type`.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<Reply, SimError> {
        self.request(Method::POST, path, &[("content-type", content_type)], body)
            .await
    }

    /// Sends a request whose body streams, and returns the answer with its body unread (to be
    /// streamed in turn). No timeout: a large transfer takes what it takes.
    pub async fn stream_request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: StreamingBody,
    ) -> Result<hyper::Response<hyper::body::Incoming>, SimError> {
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body).map_err(|source| SimError::Request {
            method: method.clone(),
            path: path.to_owned(),
            source,
        })?;
        self.streaming
            .request(request)
            .await
            .map_err(|source| SimError::Connection {
                method,
                path: path.to_owned(),
                source,
            })
    }

    /// The event in this bureau's own format, as its system would send it.
    pub fn encode(&self, event: &Event) -> Result<adapters::Encoded, SimError> {
        let (_, adapter) = self.adapter()?;
        Ok(adapter.encode(event)?)
    }

    /// POSTs a native message to `/v1/messages`, with an `Idempotency-Key` if given.
    pub async fn post_message(
        &self,
        message: &adapters::Encoded,
        idempotency_key: Option<&str>,
    ) -> Result<Reply, SimError> {
        let mut headers = vec![("content-type", message.content_type.as_str())];
        if let Some(key) = idempotency_key {
            headers.push(("idempotency-key", key));
        }
        // The format's own headers (a SOAP service's SOAPAction) name what the message carries,
        // as the bureau's system knows; a message that does not decode goes without them.
        let (_, adapter) = self.adapter()?;
        let format_headers = adapter
            .decode(&message.body, &message.content_type)
            .ok()
            .and_then(|events| events.first().map(|event| adapter.message_headers(event)))
            .unwrap_or_default();
        headers.extend(format_headers);
        self.request(Method::POST, "/v1/messages", &headers, message.body.clone())
            .await
    }

    /// Encodes the event in this bureau's format and POSTs it to `/v1/messages`.
    pub async fn send(
        &self,
        event: &Event,
        idempotency_key: Option<&str>,
    ) -> Result<Reply, SimError> {
        self.post_message(&self.encode(event)?, idempotency_key)
            .await
    }

    /// Long-polls the feed (up to `wait_seconds`, at most `limit` events) and decodes the batch
    /// in this bureau's format; `None` when nothing came.
    pub async fn feed(&self, wait_seconds: u32, limit: u32) -> Result<Option<Feed>, SimError> {
        let (bureau, adapter) = self.adapter()?;
        let reply = self
            .get(&format!("/v1/feed?wait={wait_seconds}&limit={limit}"))
            .await?;
        if reply.status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let reply = reply.expect_status("the feed", StatusCode::OK)?;
        let events = adapter
            .decode(&reply.body, reply.header("content-type").unwrap_or(""))
            .map_err(|source| SimError::Decode { bureau, source })?;
        Ok(Some(Feed {
            cursor: reply.header("feed-cursor").map(str::to_owned),
            events,
        }))
    }

    /// Acknowledges the feed up to `cursor`.
    pub async fn ack(&self, cursor: &str) -> Result<Reply, SimError> {
        self.request(
            Method::POST,
            &format!("/v1/feed/ack?cursor={cursor}"),
            &[],
            Bytes::new(),
        )
        .await
    }

    /// Publishes a survey result: `metadata` (see [`super::upload::survey_metadata`]) and its
    /// files, as one `multipart/form-data` POST to `/v1/surveys`.
    pub async fn publish_survey(
        &self,
        metadata: &serde_json::Value,
        files: &[UploadFile],
    ) -> Result<Reply, SimError> {
        let (content_type, body) = survey_upload(metadata, files);
        self.post("/v1/surveys", &content_type, body).await
    }

    /// Publishes credit-list entries (see [`super::upload::credit_line`]): one NDJSON POST to
    /// `/v1/credit/entries`, all or nothing.
    pub async fn publish_credit(&self, lines: &[serde_json::Value]) -> Result<Reply, SimError> {
        self.post(
            "/v1/credit/entries",
            "application/x-ndjson",
            credit_upload(lines),
        )
        .await
    }

    /// Reads a survey result (`GET /v1/surveys/{id}`).
    pub async fn read_survey(&self, survey_id: &str) -> Result<Reply, SimError> {
        self.get(&format!("/v1/surveys/{survey_id}")).await
    }

    /// Downloads one of a survey result's files by its SHA-256.
    pub async fn read_survey_file(&self, survey_id: &str, sha256: &str) -> Result<Reply, SimError> {
        self.get(&format!("/v1/surveys/{survey_id}/files/{sha256}"))
            .await
    }
}
