//! The request limits the HTTP layer enforces, written where they are enforced (the connection
//! limits, header and idle timeouts are the listener's, in `net::listener`):
//!
//! - [`single_host`]: a request with more than one `Host` header is refused with 400 (RFC 9112
//!   §3.2), before routing.
//! - [`BodyBudget`] with the [`budget`] middleware: the request-body bytes held in memory at once
//!   over all requests that buffer their body (`limits.max_in_flight_body_bytes`). A body with a
//!   `Content-Length` reserves it before its first byte is read; others reserve each chunk as it
//!   arrives. A request whose body does not fit waits (reading nothing more, so its client is
//!   held back by TCP) until others finish; its request timeout still runs. The reservation is
//!   released when the handler has answered.
//! - [`progress`]: the progress rule of uploads — no byte for `surveys.upload_stall_seconds` and
//!   the upload is cut off with 408 and the connection closed.
//!
//! Every body is wrapped, never read, here: a handler's caller extractor runs before its body
//! extractor, so a caller without a valid identity is refused before any body byte is read and
//! before anything is reserved.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as _, Frame, SizeHint};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

use super::problem::Problem;
use crate::metrics as m;

/// Refuses a request with more than one `Host` header (400, problem+json).
pub(super) async fn single_host(request: Request, next: Next) -> Response {
    if request
        .headers()
        .get_all(header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        let mut response =
            Problem::bad_request("a request carries exactly one Host header (RFC 9112, 3.2)")
                .into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    next.run(request).await
}

/// The request-body bytes that may be held in memory at once, over all requests it is applied
/// to (`limits.max_in_flight_body_bytes`), and the largest one body may reserve up front
/// (`limits.max_body_bytes`).
#[derive(Debug, Clone)]
pub(super) struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: u32,
    max_body: usize,
}

impl BodyBudget {
    /// A budget of `total` bytes (at most 4 GiB), for bodies of at most `max_body` bytes.
    pub(super) fn new(total: usize, max_body: usize) -> Self {
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        Self {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
            max_body,
        }
    }

    /// Bytes not reserved by any request now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// Holds the request's body within the [`BodyBudget`] until the handler has answered.
pub(super) async fn budget(
    State(budget): State<BodyBudget>,
    request: Request,
    next: Next,
) -> Response {
    let held = Arc::new(Mutex::new(None));
    let request = request.map(|body| {
        let upfront = body
            .size_hint()
            .exact()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0 && *n <= budget.max_body);
        Body::new(Budgeted {
            inner: body,
            budget: budget.clone(),
            held: held.clone(),
            upfront,
            prepaid: 0,
            waiting: None,
            frame: None,
        })
    });
    let response = next.run(request).await;
    // The body (and its copy of `held`) went with the request; this releases the reservation.
    drop(held);
    response
}

/// A request's reservation in the budget, shown by [`m::REQUEST_BODY_BYTES_RESERVED`].
struct Reservation(OwnedSemaphorePermit);

impl Reservation {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        metrics::gauge!(m::REQUEST_BODY_BYTES_RESERVED).increment(permit.num_permits() as f64);
        Self(permit)
    }

    fn merge(&mut self, permit: OwnedSemaphorePermit) {
        metrics::gauge!(m::REQUEST_BODY_BYTES_RESERVED).increment(permit.num_permits() as f64);
        self.0.merge(permit);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        metrics::gauge!(m::REQUEST_BODY_BYTES_RESERVED).decrement(self.0.num_permits() as f64);
    }
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A request body that reserves its bytes in a [`BodyBudget`] before handing them on.
struct Budgeted {
    inner: Body,
    budget: BodyBudget,
    /// What this request has reserved, shared with the [`budget`] middleware.
    held: Arc<Mutex<Option<Reservation>>>,
    /// The `Content-Length` to reserve before the first read.
    upfront: Option<usize>,
    /// Reserved bytes not yet received.
    prepaid: usize,
    /// A reservation being waited for.
    waiting: Option<Acquire>,
    /// A received frame waiting for its reservation.
    frame: Option<Frame<Bytes>>,
}

impl Budgeted {
    fn keep(&self, permit: OwnedSemaphorePermit) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut() {
            Some(held) => held.merge(permit),
            None => *held = Some(Reservation::new(permit)),
        }
    }

    fn acquire(&self, bytes: usize) -> Acquire {
        let bytes = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .min(self.budget.total);
        Box::pin(self.budget.bytes.clone().acquire_many_owned(bytes))
    }
}

impl hyper::body::Body for Budgeted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        loop {
            if let Some(waiting) = self.waiting.as_mut() {
                let permit = ready!(waiting.as_mut().poll(cx)).map_err(axum::Error::new)?;
                self.waiting = None;
                self.keep(permit);
                if let Some(frame) = self.frame.take() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                continue;
            }
            if let Some(bytes) = self.upfront.take() {
                self.prepaid = bytes;
                self.waiting = Some(self.acquire(bytes));
                continue;
            }
            let frame = match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                other => return Poll::Ready(other),
            };
            let size = frame.data_ref().map_or(0, Bytes::len);
            if size <= self.prepaid {
                self.prepaid -= size;
                return Poll::Ready(Some(Ok(frame)));
            }
            let needed = size - self.prepaid;
            self.prepaid = 0;
            let needed_u32 = u32::try_from(needed)
                .unwrap_or(u32::MAX)
                .min(self.budget.total);
            if let Ok(permit) = self.budget.bytes.clone().try_acquire_many_owned(needed_u32) {
                self.keep(permit);
                return Poll::Ready(Some(Ok(frame)));
            }
            self.frame = Some(frame);
            self.waiting = Some(self.acquire(needed));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frame.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The upload progress rule: the request body must deliver a byte at least every `stall`, or
/// the request is answered 408 and its connection closed.
pub(super) async fn progress(
    State(stall): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let stalled = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(Progress {
            inner: body,
            stall,
            timer: None,
            stalled: stalled.clone(),
        })
    });
    let response = next.run(request).await;
    if !stalled.load(Ordering::Relaxed) {
        return response;
    }
    tracing::info!(
        message = "upload cut off: no progress",
        stall_seconds = stall.as_secs()
    );
    let mut problem = Problem::timeout();
    problem.detail = format!(
        "no upload progress for {} s; nothing was stored, send again",
        stall.as_secs()
    );
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a body ended early: no byte within the progress interval.
#[derive(Debug, thiserror::Error)]
#[error("no upload progress for {0:?}")]
struct Stalled(Duration);

/// A request body that fails when no frame arrives within `stall` (counted from its first
/// poll, i.e. from when a handler starts reading it).
struct Progress {
    inner: Body,
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: Arc<AtomicBool>,
}

impl hyper::body::Body for Progress {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let stall = self.stall;
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            if let Some(timer) = self.timer.as_mut() {
                timer.as_mut().reset(tokio::time::Instant::now() + stall);
            }
            return Poll::Ready(frame);
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        ready!(timer.as_mut().poll(cx));
        self.stalled.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(Stalled(stall)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn budgeted(budget: &BodyBudget, body: Body) -> (Budgeted, Arc<Mutex<Option<Reservation>>>) {
        let held = Arc::new(Mutex::new(None));
        let upfront = body.size_hint().exact().map(|n| n as usize);
        (
            Budgeted {
                inner: body,
                budget: budget.clone(),
                held: held.clone(),
                upfront,
                prepaid: 0,
                waiting: None,
                frame: None,
            },
            held,
        )
    }

    #[tokio::test]
    async fn bodies_reserve_their_bytes_until_released() {
        let budget = BodyBudget::new(100, 100);
        let (first, first_held) = budgeted(&budget, Body::from(vec![1u8; 60]));
        assert_eq!(first.collect().await.unwrap().to_bytes().len(), 60);
        assert_eq!(budget.available(), 40, "held until the handler answers");

        // A second body of 60 bytes waits for the first one's release.
        let (second, _second_held) = budgeted(&budget, Body::from(vec![2u8; 60]));
        let mut second =
            tokio::spawn(async move { second.collect().await.map(|c| c.to_bytes().len()) });
        tokio::task::yield_now().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut second)
                .await
                .is_err(),
            "the second body waits"
        );
        drop(first_held);
        assert_eq!(second.await.unwrap().unwrap(), 60);
        assert_eq!(budget.available(), 40);
    }
}
