//! Applying a parsed publication: the next version of the project's survey kind, the record to
//! store and the notices for the entitled bureaus, as one message for the store to commit.
//! Pure: the caller reads the latest version from the store and commits what this returns.

use schemas::{BureauId, Event, FileRef, ShanghaiTime, SurveyNotice, SurveyResult};

use super::publication::Metadata;
use super::{entitled_bureaus, notice_for};
use crate::clock::Millis;
use crate::config::Config;
use crate::ids::{self, IdempotencyKey};
use crate::store::{NewEvent, NewMessage, SurveyRecord};

/// A publication that passed every check, its files already stored.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The publishing bureau (from its certificate).
    pub publisher: BureauId,
    /// Its normalized metadata.
    pub metadata: Metadata,
    /// Its stored files.
    pub files: Vec<FileRef>,
    /// The metadata part exactly as received (the raw message kept for the record).
    pub metadata_bytes: Vec<u8>,
    /// The sender's key, or one derived from the content.
    pub key: IdempotencyKey,
}

/// What a publication commits: the record and the message carrying its notices.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The new version.
    pub record: SurveyRecord,
    /// The bureaus told about it.
    pub notified: Vec<BureauId>,
    /// The message to commit: the record and one notice per notified bureau.
    pub message: NewMessage,
}

/// A planned version breaks a rule of the canonical model: a bug of the planner, never the
/// sender's fault.
#[derive(Debug, thiserror::Error)]
#[error("the planned survey version breaks a canonical rule: {0:?}")]
pub struct PlanError(Vec<schemas::rules::Violation>);

/// Plans a publication as the version after `latest` (version 1 if there is none), at `now`.
/// The planned version is checked against the canonical model's rules (versioning, figures
/// given once) before anything is committed.
pub fn plan(
    config: &Config,
    publication: Publication,
    latest: Option<SurveyRecord>,
    now: Millis,
    occurred_at: ShanghaiTime,
) -> Result<Planned, PlanError> {
    let Publication {
        publisher,
        metadata,
        files,
        metadata_bytes,
        key,
    } = publication;
    let record = SurveyRecord {
        id: ids::mint_survey_id(),
        supersedes: latest.as_ref().map(|l| l.id.clone()),
        publisher,
        result: SurveyResult {
            project: metadata.project,
            kind: metadata.kind,
            agency: metadata.agency,
            version: latest.map_or(1, |l| l.result.version + 1),
            surveyed_on: metadata.surveyed_on,
            figures: metadata.figures,
            files,
        },
        published_at: now,
    };
    let violations = SurveyNotice {
        survey_id: record.id.clone(),
        supersedes: record.supersedes.clone(),
        result: record.result.clone(),
    }
    .violations();
    if !violations.is_empty() {
        return Err(PlanError(violations));
    }
    let notified = entitled_bureaus(config, publisher, record.result.kind);
    let events = notified
        .iter()
        .filter_map(|&bureau| {
            let entitlement = config.surveys.entitlement_of(bureau)?;
            let event = Event::for_survey(
                ids::mint_message_id(),
                publisher,
                occurred_at,
                notice_for(&record, &entitlement),
            );
            Some(NewEvent {
                source_message_id: ids::survey_source_id(&record.id),
                event,
                subscribers: vec![bureau],
                routed_by: vec![format!(
                    "survey entitlement: {}",
                    crate::vocabulary::name(&record.result.kind)
                )],
                for_flows: false,
            })
        })
        .collect();
    let message = NewMessage {
        sender: publisher,
        idempotency_key: key,
        content_type: "application/json".into(),
        sha256: ids::sha256(&metadata_bytes),
        body: metadata_bytes,
        received_at: now,
        events,
        survey: Some(record.clone()),
        credit: Vec::new(),
        credit_match: None,
    };
    Ok(Planned {
        record,
        notified,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surveys::publication::parse_metadata;

    fn publication() -> Publication {
        let bytes = r#"{"project": "2201-310115-04-01-123456", "kind": "greening",
            "agency": {"name": "上海市测绘院", "credit_code": "91350100M000100Y43"},
            "surveyed_on": "2024-05-06",
            "figures": [{"name": "greening_area", "value": "1200m2"}]}"#
            .as_bytes();
        Publication {
            publisher: BureauId::Planning,
            metadata: parse_metadata(bytes).unwrap(),
            files: Vec::new(),
            metadata_bytes: bytes.to_vec(),
            key: IdempotencyKey::from_header(b"p-1").unwrap(),
        }
    }

    #[test]
    fn versions_follow_the_latest_and_notify_the_entitled() {
        let config = Config::defaults().unwrap();
        let at = crate::clock::shanghai_now().unwrap();
        let first = plan(&config, publication(), None, 1_000, at).unwrap();
        assert_eq!(first.record.result.version, 1);
        assert_eq!(first.record.supersedes, None);
        assert!(!first.notified.is_empty());
        assert!(!first.notified.contains(&BureauId::Planning));
        assert_eq!(first.message.events.len(), first.notified.len());
        let second = plan(
            &config,
            publication(),
            Some(first.record.clone()),
            2_000,
            at,
        )
        .unwrap();
        assert_eq!(second.record.result.version, 2);
        assert_eq!(second.record.supersedes, Some(first.record.id.clone()));
        for event in &second.message.events {
            let notice = event.event.survey().unwrap();
            assert_eq!(notice.supersedes, Some(first.record.id.clone()));
        }
    }
}
