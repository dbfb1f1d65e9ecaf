//! Multi-survey-in-one (多測合一): a survey result is published once, by the publishing bureau
//! on behalf of the surveying agency, and shared with every bureau entitled to it.
//!
//! - `publication`: parse the metadata and file parts of `POST /v1/surveys` (strict, every
//!   problem with its JSON pointer).
//! - `publish`: apply a parsed publication: its version (superseding the latest), the stored
//!   record, and one notice per entitled bureau (only that bureau's figures), as one
//!   `NewMessage` the store commits in one transaction. The notices then travel through the
//!   normal delivery machinery, in each bureau's own format.
//! - `blobs`: `BlobStore`, content-addressed files (streamed writes, hash re-checked on every
//!   read).
//! - Here: who is entitled to what (`entitled_bureaus`, `notice_for`).
//!
//! Architecture invariant: a bureau sees only the figures and files its entitlement names; a
//! stored file is served only if it still hashes to its name. The HTTP handlers live in
//! `http::surveys`; nothing here knows HTTP.

use schemas::{BureauId, SurveyKind, SurveyNotice};

use crate::config::{Config, Entitlement};
use crate::store::SurveyRecord;

pub mod blobs;
pub mod publication;
pub mod publish;

/// The bureaus told about a new version of `kind` published by `publisher`: every configured
/// bureau but the publisher whose entitlement covers the kind, in `BureauId` order.
pub fn entitled_bureaus(config: &Config, publisher: BureauId, kind: SurveyKind) -> Vec<BureauId> {
    config
        .bureaus
        .keys()
        .copied()
        .filter(|b| *b != publisher)
        .filter(|b| {
            config
                .surveys
                .entitlement_of(*b)
                .is_some_and(|e| e.kinds.contains(&kind))
        })
        .collect()
}

/// The notice `entitlement` may see: its figures, and the files if it may download them.
pub fn notice_for(record: &SurveyRecord, entitlement: &Entitlement) -> SurveyNotice {
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
