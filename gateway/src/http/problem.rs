//! RFC 9457 problem details: every error a caller sees is `application/problem+json` with a
//! stable type URI, a title, the status, a detail and, for invalid messages, every field error.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemas::NormalizeError;

use crate::store::StoreError;
use crate::surveys::blobs::BlobError;
use serde::Serialize;

/// A problem response.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem; clients branch on it.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A short, fixed summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// For an invalid message: every rejected value with its canonical field, the bureau's
    /// own path and the offending text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<NormalizeError>,
    /// Seconds after which a retry may succeed (also sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after_seconds: Option<u64>,
}

impl Problem {
    fn new(kind: &'static str, title: &'static str, status: StatusCode, detail: String) -> Self {
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail,
            errors: Vec::new(),
            retry_after_seconds: None,
        }
    }

    /// 401: no client certificate naming a known party.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(
            "urn:exchange:problem:unauthenticated",
            "No valid client certificate",
            StatusCode::UNAUTHORIZED,
            detail.into(),
        )
    }

    /// 403: the caller may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            "urn:exchange:problem:forbidden",
            "Not allowed for this identity",
            StatusCode::FORBIDDEN,
            detail.into(),
        )
    }

    /// 422: the message is well-formed but values in it are invalid.
    pub fn invalid(errors: Vec<NormalizeError>) -> Self {
        let mut problem = Self::new(
            "urn:exchange:problem:invalid-message",
            "The message has invalid values",
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{} value(s) rejected; nothing was stored", errors.len()),
        );
        problem.errors = errors;
        problem
    }

    /// 400: the message cannot be read at all (syntax, encoding, DOCTYPE).
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            "urn:exchange:problem:malformed-message",
            "The message cannot be read",
            StatusCode::BAD_REQUEST,
            detail.into(),
        )
    }

    /// 400: a request parameter or header is wrong.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            "urn:exchange:problem:bad-request",
            "The request is not valid",
            StatusCode::BAD_REQUEST,
            detail.into(),
        )
    }

    /// 413: the body exceeds a limit.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            "urn:exchange:problem:too-large",
            "The message is too large",
            StatusCode::PAYLOAD_TOO_LARGE,
            detail.into(),
        )
    }

    /// 415: the content type is not the sender's format.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            "urn:exchange:problem:unsupported-media-type",
            "Content type not accepted from this bureau",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            detail.into(),
        )
    }

    /// 503: the store cannot commit now; nothing was stored, send again later.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(
            "urn:exchange:problem:store-unavailable",
            "Temporarily unable to commit",
            StatusCode::SERVICE_UNAVAILABLE,
            detail.into(),
        );
        problem.retry_after_seconds = Some(5);
        problem
    }

    /// 408: the request took too long; anything not yet committed was not stored.
    pub fn timeout() -> Self {
        Self::new(
            "urn:exchange:problem:timeout",
            "The request took too long",
            StatusCode::REQUEST_TIMEOUT,
            "send again with the same idempotency key; a message already committed is not stored twice"
                .into(),
        )
    }

    /// 409: a concurrent write took the same slot; sending again may succeed.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(
            "urn:exchange:problem:conflict",
            "Conflicting concurrent request",
            StatusCode::CONFLICT,
            detail.into(),
        )
    }

    /// 500: stored content failed its integrity check; it is not served.
    pub fn integrity(detail: impl Into<String>) -> Self {
        Self::new(
            "urn:exchange:problem:integrity",
            "Stored content failed its integrity check",
            StatusCode::INTERNAL_SERVER_ERROR,
            detail.into(),
        )
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            "urn:exchange:problem:not-found",
            "No such resource",
            StatusCode::NOT_FOUND,
            detail.into(),
        )
    }

    /// 500: our fault; the detail is logged, never sent.
    pub fn internal() -> Self {
        Self::new(
            "urn:exchange:problem:internal",
            "Internal error",
            StatusCode::INTERNAL_SERVER_ERROR,
            "the gateway failed; the error is logged".into(),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The one mapping from a store failure to what a caller is told. The error, with its source,
/// is logged here, so no handler can drop it; the response never carries internals.
impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        error.count();
        match &error {
            StoreError::Conflict(detail) => Self::conflict(detail.clone()),
            StoreError::Unavailable { .. } => {
                tracing::warn!(
                    message = "store unavailable",
                    error = &error as &dyn std::error::Error
                );
                Self::unavailable(
                    "the store cannot be reached now; nothing was committed, try again later",
                )
            }
            StoreError::Corrupt { .. } | StoreError::Closed => {
                tracing::error!(
                    message = "store failed",
                    error = &error as &dyn std::error::Error
                );
                Self::internal()
            }
        }
    }
}

impl From<BlobError> for Problem {
    fn from(error: BlobError) -> Self {
        match &error {
            BlobError::TooLarge { limit } => {
                Self::too_large(format!("a file exceeds {limit} bytes"))
            }
            BlobError::Upload(detail) => Self::bad_request(format!("multipart upload: {detail}")),
            BlobError::NotFound(_) => Self::not_found("the file is missing from the store"),
            BlobError::Corrupt { sha256, .. } => {
                tracing::error!(
                    message = "a stored survey file failed its integrity check",
                    error = &error as &dyn std::error::Error
                );
                Self::integrity(format!(
                    "file {sha256} failed its integrity check and is not served"
                ))
            }
            BlobError::Io { .. } => {
                tracing::error!(
                    message = "blob store failed",
                    error = &error as &dyn std::error::Error
                );
                Self::unavailable("the file store cannot be used now; try again later")
            }
        }
    }
}

impl Problem {
    /// 500 for an internal failure, logged with its source chain first.
    pub fn internal_from(what: &'static str, error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(message = what, error);
        Self::internal()
    }
}

/// A request axum could not extract (a query string, JSON body, path segment, multipart body
/// or body that breaks its limit) answered as a problem like every other refusal, with the
/// extractor's status and its description of what is wrong.
fn rejected(status: StatusCode, detail: String) -> Problem {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::too_large(detail),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::unsupported_media_type(detail),
        StatusCode::UNPROCESSABLE_ENTITY => Problem::new(
            "urn:exchange:problem:invalid-request",
            "The request's values are not valid",
            status,
            detail,
        ),
        status if status.is_server_error() => {
            tracing::error!(message = "request extraction failed", %status, detail);
            Problem::internal()
        }
        _ => Problem::bad_request(detail),
    }
}

/// `From<rejection> for Problem` for each axum extractor the handlers use, so a handler takes
/// `Result<Extractor, Rejection>` and answers with `?`.
macro_rules! problem_from_rejection {
    ($($rejection:ty),* $(,)?) => {
        $(impl From<$rejection> for Problem {
            fn from(rejection: $rejection) -> Self {
                rejected(rejection.status(), rejection.body_text())
            }
        })*
    };
}

problem_from_rejection!(
    axum::extract::rejection::BytesRejection,
    axum::extract::rejection::JsonRejection,
    axum::extract::rejection::PathRejection,
    axum::extract::rejection::QueryRejection,
    axum::extract::multipart::MultipartError,
    axum::extract::multipart::MultipartRejection,
    axum::extract::rejection::FormRejection,
);
