//! Multi-survey-in-one (多測合一): a survey result is published once, by the publishing bureau
//! on behalf of the surveying agency, and shared with every bureau entitled to it.
//!
//! `POST /v1/surveys` takes `multipart/form-data`: a `metadata` part (JSON) first, then one
//! `file` part per file, streamed into the content-addressed [`BlobStore`](crate::blobs::BlobStore). The figures are
//! normalized with the same strict rules as case data. The result, and one survey notice per
//! entitled bureau (only that bureau's figures), are committed in one transaction; the notices
//! then travel through the normal delivery machinery, in each bureau's own format. Reads of a
//! result and its files are recorded, which makes reuse visible.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemas::model::Name;
use schemas::survey::parse_media_type;
use schemas::{
    BureauId, CanonicalField as F, CreditCode, Event, FigureName, FileRef, MessageId, Normalizer,
    Organization, Problem as ValueProblem, ProjectCode, Sha256Hex, ShanghaiDate, ShanghaiTime,
    SurveyFigure, SurveyId, SurveyKind, SurveyNotice, SurveyResult,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::app::{AppState, Peer, bureau_of, now_ms, operator_of};
use crate::blobs::BlobError;
use crate::config::Entitlement;
use crate::metrics as m;
use crate::problem::Problem;
use crate::store::{IngestOutcome, NewEvent, NewMessage, Store, StoreError, SurveyRecord};

/// The survey endpoints (their own body limit and timeout: files can be large).
pub fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    let surveys = &state.config.surveys;
    let timeout = std::time::Duration::from_secs(surveys.upload_timeout_seconds);
    Router::new()
        .route("/v1/surveys", post(publish::<S>))
        .route("/v1/surveys/{id}", get(read_survey::<S>))
        .route("/v1/surveys/{id}/files/{sha256}", get(read_file::<S>))
        .route("/v1/surveys/{id}/reads", get(reads::<S>))
        .layer(axum::extract::DefaultBodyLimit::max(
            surveys.max_upload_bytes,
        ))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                match tokio::time::timeout(timeout, next.run(req)).await {
                    Ok(response) => response,
                    Err(_) => Problem::timeout().into_response(),
                }
            },
        ))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataIn {
    project: String,
    kind: String,
    agency: AgencyIn,
    surveyed_on: String,
    figures: Vec<FigureIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencyIn {
    name: String,
    credit_code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FigureIn {
    name: String,
    value: String,
}

/// A closed vocabulary by its canonical (serialized) name.
fn by_name<T: serde::de::DeserializeOwned>(
    text: &str,
    vocabulary: &'static str,
) -> Result<T, ValueProblem> {
    serde_json::from_value(serde_json::Value::String(text.trim().to_owned()))
        .map_err(|_| ValueProblem::UnknownCode { vocabulary })
}

/// The notice `entitlement` may see: its figures, and the files if it may download them.
fn notice_for(record: &SurveyRecord, entitlement: &Entitlement) -> SurveyNotice {
    let mut result = record.result.clone();
    result
        .figures
        .retain(|f| entitlement.figures.contains(&f.name));
    if !entitlement.files.contains(&result.kind) {
        result.files.clear();
    }
    SurveyNotice {
        survey_id: record.id.clone(),
        supersedes: record.supersedes.clone(),
        result,
    }
}

fn shanghai_now() -> Result<ShanghaiTime, Problem> {
    let seconds = now_ms() / 1000 + 8 * 3600;
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.naive_utc())
        .and_then(|local| ShanghaiTime::from_local(local).ok())
        .ok_or_else(Problem::internal)
}

fn bad_upload(error: impl std::fmt::Display) -> Response {
    Problem::bad_request(format!("multipart upload: {error}")).into_response()
}

/// `POST /v1/surveys` (the publishing bureau).
async fn publish<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let publisher = match bureau_of(&peer, &state) {
        Ok(bureau) => bureau,
        Err(problem) => return problem.into_response(),
    };
    let surveys = &state.config.surveys;
    if publisher != surveys.publisher {
        return Problem::forbidden(format!(
            "survey results are published by {}, not {publisher}",
            surveys.publisher
        ))
        .into_response();
    }
    // The metadata part comes first, so it is checked before any file is stored.
    let metadata_bytes = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("metadata") => match field.bytes().await {
            Ok(bytes) if bytes.len() <= 1 << 20 => bytes,
            Ok(_) => return Problem::too_large("the metadata part exceeds 1 MiB").into_response(),
            Err(error) => return bad_upload(error),
        },
        Ok(_) => return bad_upload("the first part must be named metadata"),
        Err(error) => return bad_upload(error),
    };
    let metadata: MetadataIn = match serde_json::from_slice(&metadata_bytes) {
        Ok(metadata) => metadata,
        Err(error) => return Problem::malformed(format!("metadata: {error}")).into_response(),
    };
    let mut n = Normalizer::new();
    let project = n.field(
        F::SurveyProject,
        || "/project".into(),
        Some(&metadata.project),
        ProjectCode::parse,
    );
    let kind: Option<SurveyKind> = n.field(
        F::SurveyKind,
        || "/kind".into(),
        Some(&metadata.kind),
        |t| by_name(t, "survey kind"),
    );
    let agency_name = n.field(
        F::SurveyAgencyName,
        || "/agency/name".into(),
        Some(&metadata.agency.name),
        Name::parse,
    );
    let agency_code = n.field(
        F::SurveyAgencyCreditCode,
        || "/agency/credit_code".into(),
        Some(&metadata.agency.credit_code),
        CreditCode::parse,
    );
    let surveyed_on = n.field(
        F::SurveyedOn,
        || "/surveyed_on".into(),
        Some(&metadata.surveyed_on),
        ShanghaiDate::parse_iso,
    );
    let mut figures = Vec::new();
    for (i, figure) in metadata.figures.iter().enumerate() {
        let name: Option<FigureName> = n.field(
            F::SurveyFigure,
            || format!("/figures/{i}/name"),
            Some(&figure.name),
            |t| by_name(t, "figure name"),
        );
        if let Some(name) = name
            && let Some(quantity) = n.field(
                F::SurveyFigure,
                || format!("/figures/{i}/value"),
                Some(&figure.value),
                |t| name.parse_value(t),
            )
        {
            if figures.iter().any(|f: &SurveyFigure| f.name == name) {
                n.reject(
                    F::SurveyFigure,
                    format!("/figures/{i}/name"),
                    &figure.name,
                    ValueProblem::Inconsistent {
                        reason: "figure given more than once",
                    },
                );
            }
            figures.push(SurveyFigure { name, quantity });
        }
    }
    if !n.is_clean() {
        return Problem::invalid(n.errors().to_vec()).into_response();
    }

    // The files, streamed into the blob store.
    let mut files = Vec::new();
    let mut digests = Sha256::new();
    digests.update(&metadata_bytes);
    let limit = surveys.max_upload_bytes as u64;
    for i in 0.. {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return bad_upload(error),
        };
        if field.name() != Some("file") {
            return bad_upload("parts after metadata must be named file");
        }
        let file_name = n.field(
            F::SurveyFile,
            || format!("/files/{i}/name"),
            field.file_name(),
            Name::parse,
        );
        let media_type = n.field(
            F::SurveyFile,
            || format!("/files/{i}/media_type"),
            field.content_type(),
            parse_media_type,
        );
        // A part refused for its name or type is not stored: no orphan file is left behind.
        let (Some(name), Some(media_type)) = (file_name, media_type) else {
            continue;
        };
        let stored = match state.blobs.put(field, limit).await {
            Ok(stored) => stored,
            Err(BlobError::TooLarge { limit }) => {
                return Problem::too_large(format!("a file exceeds {limit} bytes")).into_response();
            }
            Err(BlobError::Upload(error)) => return bad_upload(error),
            Err(error) => {
                tracing::error!(message = "blob store failed", %error);
                return Problem::unavailable("the file store cannot write now").into_response();
            }
        };
        digests.update(stored.sha256.as_bytes());
        let Ok(sha256) = Sha256Hex::parse(&stored.sha256) else {
            return Problem::internal().into_response();
        };
        files.push(FileRef {
            name,
            media_type,
            sha256,
            size_bytes: stored.size,
        });
    }
    if !n.is_clean() {
        return Problem::invalid(n.errors().to_vec()).into_response();
    }
    let (Some(project), Some(kind), Some(agency_name), Some(agency_code), Some(surveyed_on)) =
        (project, kind, agency_name, agency_code, surveyed_on)
    else {
        return Problem::internal().into_response();
    };

    // The next version of this project's survey kind supersedes the latest.
    let latest = match state
        .store
        .latest_survey(project.as_str().to_owned(), kind)
        .await
    {
        Ok(latest) => latest,
        Err(error) => return store_problem(&error),
    };
    let version = latest.as_ref().map_or(1, |l| l.result.version + 1);
    let Ok(survey_id) = SurveyId::parse(&format!("sv-{}", uuid::Uuid::now_v7().simple())) else {
        return Problem::internal().into_response();
    };
    let record = SurveyRecord {
        id: survey_id.clone(),
        supersedes: latest.map(|l| l.id),
        publisher,
        result: SurveyResult {
            project,
            kind,
            agency: Organization {
                name: agency_name,
                credit_code: agency_code,
            },
            version,
            surveyed_on,
            figures,
            files,
        },
        published_at: now_ms(),
    };
    let occurred_at = match shanghai_now() {
        Ok(time) => time,
        Err(problem) => return problem.into_response(),
    };
    let mut events = Vec::new();
    for bureau in state
        .config
        .bureaus
        .keys()
        .copied()
        .filter(|b| *b != publisher)
    {
        let Some(entitlement) = surveys
            .entitlement_of(bureau)
            .filter(|e| e.kinds.contains(&kind))
        else {
            continue;
        };
        let Ok(message_id) = MessageId::parse(&format!("gw-{}", uuid::Uuid::now_v7().simple()))
        else {
            return Problem::internal().into_response();
        };
        let event = Event::for_survey(
            message_id,
            publisher,
            occurred_at,
            notice_for(&record, &entitlement),
        );
        events.push(NewEvent {
            source_message_id: survey_id.as_str().to_owned(),
            event,
            subscribers: vec![bureau],
        });
    }
    let notified: Vec<BureauId> = events.iter().flat_map(|e| e.subscribers.clone()).collect();
    let key = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(key) if !key.is_empty() && key.len() <= 128 => format!("key:{key}"),
        Some(_) => {
            return Problem::bad_request("Idempotency-Key must be 1-128 characters")
                .into_response();
        }
        None => format!("survey:{:x}", digests.finalize()),
    };
    let message = NewMessage {
        sender: publisher,
        idempotency_key: key,
        content_type: "application/json".into(),
        sha256: format!("{:x}", Sha256::digest(&metadata_bytes)),
        body: metadata_bytes.to_vec(),
        received_at: now_ms(),
        events,
        survey: Some(record.clone()),
    };
    match state.store.ingest(message).await {
        Ok(IngestOutcome::Accepted(receipt)) => {
            let kind_name = crate::routing::name(&kind);
            metrics::counter!(m::SURVEYS_SHARED, "kind" => kind_name.clone()).increment(1);
            metrics::counter!(m::SURVEY_NOTICES, "kind" => kind_name)
                .increment(notified.len() as u64);
            tracing::info!(message = "survey published", survey_id = survey_id.as_str(), version, notified = ?notified);
            state.wakers.wake_all();
            let body = serde_json::json!({
                "survey_id": survey_id.as_str(),
                "version": version,
                "supersedes": record.supersedes.as_ref().map(SurveyId::as_str),
                "notified": notified,
                "message_ids": receipt.message_ids,
                "deliveries": receipt.deliveries,
            });
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Ok(IngestOutcome::Duplicate(receipt)) => {
            // The first publication's answer: its version, what it superseded, who was told.
            let first = match receipt.survey_id.as_deref().map(SurveyId::parse) {
                Some(Ok(id)) => state.store.survey(id).await.ok().flatten(),
                _ => None,
            };
            let notified: Vec<BureauId> = match &first {
                Some(first) => state
                    .config
                    .bureaus
                    .keys()
                    .copied()
                    .filter(|b| *b != first.publisher)
                    .filter(|b| {
                        surveys
                            .entitlement_of(*b)
                            .is_some_and(|e| e.kinds.contains(&first.result.kind))
                    })
                    .collect(),
                None => Vec::new(),
            };
            let body = serde_json::json!({
                "survey_id": receipt.survey_id,
                "version": first.as_ref().map(|f| f.result.version),
                "supersedes": first.as_ref().and_then(|f| f.supersedes.as_ref().map(SurveyId::as_str)),
                "notified": notified,
                "message_ids": receipt.message_ids,
                "deliveries": receipt.deliveries,
            });
            let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        Err(error) => store_problem(&error),
    }
}

fn store_problem(error: &StoreError) -> Response {
    match error {
        StoreError::Conflict(detail) => Problem::conflict(detail.clone()).into_response(),
        error if error.is_retryable() => {
            Problem::unavailable("the store cannot commit now; nothing was stored").into_response()
        }
        error => {
            tracing::error!(message = "store failed", %error);
            Problem::internal().into_response()
        }
    }
}

/// Loads a survey the caller may read, with its entitlement.
async fn readable<S: Store + Clone>(
    state: &AppState<S>,
    peer: &Peer,
    id: &str,
) -> Result<(BureauId, SurveyRecord, Entitlement), Response> {
    let bureau = bureau_of(peer, state).map_err(IntoResponse::into_response)?;
    let id = SurveyId::parse(id)
        .map_err(|_| Problem::not_found("no such survey result").into_response())?;
    let record = match state.store.survey(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return Err(Problem::not_found("no such survey result").into_response()),
        Err(error) => return Err(store_problem(&error)),
    };
    match state.config.surveys.entitlement_of(bureau) {
        Some(entitlement) if entitlement.kinds.contains(&record.result.kind) => {
            Ok((bureau, record, entitlement))
        }
        _ => Err(Problem::forbidden(format!(
            "{bureau} is not entitled to {} survey results",
            crate::routing::name(&record.result.kind)
        ))
        .into_response()),
    }
}

async fn record_read<S: Store + Clone>(
    state: &AppState<S>,
    record: &SurveyRecord,
    bureau: BureauId,
    what: String,
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
        Err(error) => tracing::warn!(message = "survey read not recorded", %error),
    }
}

/// `GET /v1/surveys/{id}`: the result as the caller may see it.
async fn read_survey<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
) -> Response {
    let (bureau, record, entitlement) = match readable(&state, &peer, &id).await {
        Ok(readable) => readable,
        Err(response) => return response,
    };
    record_read(&state, &record, bureau, "metadata".into()).await;
    axum::Json(notice_for(&record, &entitlement)).into_response()
}

/// `GET /v1/surveys/{id}/files/{sha256}`: a file, streamed, after its hash is re-checked.
async fn read_file<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
    Path((id, sha256)): Path<(String, String)>,
) -> Response {
    let (bureau, record, entitlement) = match readable(&state, &peer, &id).await {
        Ok(readable) => readable,
        Err(response) => return response,
    };
    if !entitlement.files.contains(&record.result.kind) {
        return Problem::forbidden(format!("{bureau} may not download these files"))
            .into_response();
    }
    let Some(file) = record
        .result
        .files
        .iter()
        .find(|f| f.sha256.as_str() == sha256)
    else {
        return Problem::not_found("no such file in this survey result").into_response();
    };
    let (size, stream) = match state.blobs.open(file.sha256.as_str()).await {
        Ok(opened) => opened,
        Err(error @ BlobError::Corrupt { .. }) => {
            tracing::error!(message = "a stored survey file failed its integrity check", %error);
            return Problem::integrity(format!(
                "file {} failed its integrity check and is not served",
                file.sha256.as_str()
            ))
            .into_response();
        }
        Err(BlobError::NotFound(_)) => {
            return Problem::not_found("the file is missing from the store").into_response();
        }
        Err(error) => {
            tracing::error!(message = "blob store failed", %error);
            return Problem::unavailable("the file store cannot be read now").into_response();
        }
    };
    record_read(&state, &record, bureau, format!("file:{sha256}")).await;
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&file.media_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(
        "digest-sha256",
        HeaderValue::from_str(file.sha256.as_str()).unwrap_or(HeaderValue::from_static("")),
    );
    response
}

/// `GET /v1/surveys/{id}/reads` (operators and the publisher): who fetched the result.
async fn reads<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
) -> Response {
    let allowed = operator_of(&peer).is_ok()
        || matches!(&peer.0, Some(crate::identity::Identity::Bureau(b)) if *b == state.config.surveys.publisher);
    if !allowed {
        return Problem::forbidden("only operators and the publisher see who read a result")
            .into_response();
    }
    let Ok(id) = SurveyId::parse(&id) else {
        return Problem::not_found("no such survey result").into_response();
    };
    match state.store.survey_reads(id.clone()).await {
        Ok(reads) => {
            let mut bureaus: Vec<BureauId> = reads.iter().map(|r| r.bureau).collect();
            bureaus.sort();
            bureaus.dedup();
            axum::Json(
                serde_json::json!({ "survey_id": id.as_str(), "bureaus": bureaus, "reads": reads }),
            )
            .into_response()
        }
        Err(error) => store_problem(&error),
    }
}
