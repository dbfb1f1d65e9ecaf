//! The survey endpoints: `POST /v1/surveys` (the publisher), reads of a result and its files
//! (entitled bureaus), and who read a result (operators and the publisher).
//!
//! Publishing is parse, then apply: the metadata part (at most 1 MiB, refused as soon as it grows
//! past that) is parsed first (so nothing is stored for
//! a refused publication), the files are streamed into the blob store, then
//! `surveys::publish::plan` makes the version, record and notices, and the store commits them
//! in one transaction before the 201.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemas::{BureauId, FileRef, Normalizer, Sha256Hex, SurveyId};
use sha2::{Digest, Sha256};

use super::caller::{Bureau, OperatorOrPublisher, Publisher};
use super::problem::Problem;
use super::state::AppState;
use crate::clock::{now_ms, shanghai_now};
use crate::config::Entitlement;
use crate::ids::IdempotencyKey;
use crate::metrics as m;
use crate::store::{IngestOutcome, ReadOf, Receipt, Store, SurveyRecord};
use crate::surveys::publication::{self, MAX_METADATA_BYTES, MetadataError};
use crate::surveys::publish::{self, Publication};
use crate::surveys::{entitled_bureaus, notice_for};
use crate::vocabulary;

/// At most this many reads are listed by `GET /v1/surveys/{id}/reads`.
const MAX_READS_LISTED: usize = 1000;

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/v1/surveys", post(publish::<S>))
        .route("/v1/surveys/{id}", get(read_survey::<S>))
        .route("/v1/surveys/{id}/files/{sha256}", get(read_file::<S>))
        .route("/v1/surveys/{id}/reads", get(reads::<S>))
}

fn bad_upload(error: impl std::fmt::Display) -> Problem {
    Problem::bad_request(format!("multipart upload: {error}"))
}

/// Reads the multipart body: the metadata part first (checked before any file is stored),
/// then each file part, streamed into the blob store.
async fn receive<S: Store + Clone>(
    state: &AppState<S>,
    publisher: BureauId,
    headers: &HeaderMap,
    multipart: &mut Multipart,
) -> Result<Publication, Problem> {
    let metadata_bytes = match multipart.next_field().await? {
        Some(mut field) if field.name() == Some("metadata") => {
            // Limited while it streams: refused as soon as it grows past the limit.
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await? {
                if bytes.len() + chunk.len() > MAX_METADATA_BYTES {
                    return Err(Problem::too_large("the metadata part exceeds 1 MiB"));
                }
                bytes.extend_from_slice(&chunk);
            }
            axum::body::Bytes::from(bytes)
        }
        _ => return Err(bad_upload("the first part must be named metadata")),
    };
    let metadata = publication::parse_metadata(&metadata_bytes).map_err(|error| match error {
        MetadataError::Malformed(error) => Problem::malformed(format!("metadata: {error}")),
        MetadataError::Invalid(errors) => Problem::invalid(errors),
    })?;
    let key = match headers.get("idempotency-key") {
        Some(value) => Some(
            IdempotencyKey::from_header(value.as_bytes())
                .map_err(|e| Problem::bad_request(e.to_string()))?,
        ),
        None => None,
    };

    let mut n = Normalizer::new();
    let mut files = Vec::new();
    let mut digests = Sha256::new();
    digests.update(&metadata_bytes);
    let limit = state.config.surveys.max_upload_bytes as u64;
    let mut index = 0;
    while let Some(field) = multipart.next_field().await? {
        if field.name() != Some("file") {
            return Err(bad_upload("parts after metadata must be named file"));
        }
        let part =
            publication::parse_file_part(&mut n, index, field.file_name(), field.content_type());
        index += 1;
        // A part refused for its name or type is not stored: no orphan file is left behind.
        let Some((name, media_type)) = part else {
            continue;
        };
        let stored = state.blobs.put(field, limit).await?;
        digests.update(stored.sha256.as_bytes());
        let sha256 = Sha256Hex::parse(&stored.sha256)
            .map_err(|error| Problem::internal_from("the blob store named a file badly", &error))?;
        files.push(FileRef {
            name,
            media_type,
            sha256,
            size_bytes: stored.size,
        });
    }
    if !n.is_clean() {
        return Err(Problem::invalid(n.errors().to_vec()));
    }
    Ok(Publication {
        publisher,
        metadata,
        files,
        key: key.unwrap_or_else(|| IdempotencyKey::from_publication_digest(&digests.finalize())),
        metadata_bytes: metadata_bytes.to_vec(),
    })
}

/// The answer to a publication: what was published and who was told.
fn published(receipt: &Receipt, record: Option<&SurveyRecord>, notified: &[BureauId]) -> Response {
    let body = serde_json::json!({
        "survey_id": receipt.survey_id,
        "version": record.map(|r| r.result.version),
        "supersedes": record.and_then(|r| r.supersedes.as_ref()),
        "notified": notified,
        "message_ids": receipt.message_ids,
        "deliveries": receipt.deliveries,
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// `POST /v1/surveys` (the publishing bureau).
async fn publish<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Publisher(publisher): Publisher,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Problem> {
    let mut multipart = multipart?;
    let publication = receive(&state, publisher, &headers, &mut multipart).await?;
    let (project, kind) = (
        publication.metadata.project.clone(),
        publication.metadata.kind,
    );
    let latest = state.store.latest_survey(project, kind).await?;
    let occurred_at = shanghai_now().ok_or_else(|| {
        tracing::error!(message = "the system clock is outside the canonical model's range");
        Problem::internal()
    })?;
    let planned = publish::plan(&state.config, publication, latest, now_ms(), occurred_at)
        .map_err(|error| Problem::internal_from("survey version not planned", &error))?;
    match state.store.ingest(planned.message).await? {
        IngestOutcome::Accepted(receipt) => {
            state.activity.received(planned.record.publisher, now_ms());
            let kind_name = vocabulary::name(&kind);
            metrics::counter!(m::SURVEYS_SHARED, "kind" => kind_name.clone()).increment(1);
            metrics::counter!(m::SURVEY_NOTICES, "kind" => kind_name)
                .increment(planned.notified.len() as u64);
            tracing::info!(message = "survey published", survey_id = planned.record.id.as_str(), version = planned.record.result.version, notified = ?planned.notified);
            state.wakers.wake_all();
            Ok(published(
                &receipt,
                Some(&planned.record),
                &planned.notified,
            ))
        }
        IngestOutcome::Duplicate(receipt) => {
            // The first publication's answer: its version, what it superseded, who was told.
            let first = match &receipt.survey_id {
                Some(id) => state.store.survey(id.clone()).await?,
                None => None,
            };
            let notified = first.as_ref().map_or_else(Vec::new, |first| {
                entitled_bureaus(&state.config, first.publisher, first.result.kind)
            });
            let mut response = published(&receipt, first.as_ref(), &notified);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
    }
}

/// Loads a survey the caller may read, with its entitlement.
async fn readable<S: Store + Clone>(
    state: &AppState<S>,
    bureau: BureauId,
    id: &str,
) -> Result<(SurveyRecord, Entitlement), Problem> {
    let not_found = || Problem::not_found("no such survey result");
    let id = SurveyId::parse(id).map_err(|_| not_found())?;
    let record = state.store.survey(id).await?.ok_or_else(not_found)?;
    match state.config.surveys.entitlement_of(bureau) {
        Some(entitlement) if entitlement.kinds.contains(&record.result.kind) => {
            Ok((record, entitlement))
        }
        _ => Err(Problem::forbidden(format!(
            "{bureau} is not entitled to {} survey results",
            vocabulary::name(&record.result.kind)
        ))),
    }
}

/// Records a read; a failure to record it does not refuse the read (it is logged).
async fn record_read<S: Store + Clone>(
    state: &AppState<S>,
    record: &SurveyRecord,
    bureau: BureauId,
    what: ReadOf,
) {
    match state
        .store
        .record_survey_read(record.id.clone(), bureau, what, now_ms())
        .await
    {
        Ok(true) if bureau != record.publisher => {
            // A bureau that reuses the result instead of commissioning its own survey.
            metrics::counter!(m::SURVEY_REUSES, "bureau" => bureau.as_str()).increment(1);
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(
            message = "survey read not recorded",
            error = &error as &dyn std::error::Error
        ),
    }
}

/// `GET /v1/surveys/{id}`: the result as the caller may see it.
async fn read_survey<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Bureau(bureau): Bureau,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = path?;
    let (record, entitlement) = readable(&state, bureau, &id).await?;
    record_read(&state, &record, bureau, ReadOf::Metadata).await;
    Ok(axum::Json(notice_for(&record, &entitlement)).into_response())
}

/// `GET /v1/surveys/{id}/files/{sha256}`: a file, streamed, after its hash is re-checked.
async fn read_file<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Bureau(bureau): Bureau,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, Problem> {
    let Path((id, sha256)) = path?;
    let (record, entitlement) = readable(&state, bureau, &id).await?;
    if !entitlement.files.contains(&record.result.kind) {
        return Err(Problem::forbidden(format!(
            "{bureau} may not download these files"
        )));
    }
    let file = record
        .result
        .files
        .iter()
        .find(|f| f.sha256.as_str() == sha256)
        .ok_or_else(|| Problem::not_found("no such file in this survey result"))?;
    let (size, stream) = state.blobs.open(file.sha256.as_str()).await?;
    record_read(&state, &record, bureau, ReadOf::File(file.sha256.clone())).await;
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&file.media_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(value) = HeaderValue::from_str(file.sha256.as_str()) {
        headers.insert("digest-sha256", value);
    }
    Ok(response)
}

/// `GET /v1/surveys/{id}/reads` (operators and the publisher): who fetched the result, the
/// first 1000 reads.
async fn reads<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: OperatorOrPublisher,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = path?;
    let id = SurveyId::parse(&id).map_err(|_| Problem::not_found("no such survey result"))?;
    let reads = state
        .store
        .survey_reads(id.clone(), MAX_READS_LISTED)
        .await?;
    let mut bureaus: Vec<BureauId> = reads.iter().map(|r| r.bureau).collect();
    bureaus.sort();
    bureaus.dedup();
    Ok(axum::Json(
        serde_json::json!({ "survey_id": id.as_str(), "bureaus": bureaus, "reads": reads }),
    )
    .into_response())
}
