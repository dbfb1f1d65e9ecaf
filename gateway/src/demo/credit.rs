//! The demo's credit list: the housing administration lists one applicant on the
//! dishonest-entity blacklist (one line of `POST /v1/credit/entries`), then planning grants that
//! applicant a construction planning permit. The permit's deliveries to the five bureaus that
//! follow it carry the `Credit-Warning` header, and every bureau of the list receives the entry
//! and one match notice, each in its own format. The summary checks the case matched once and
//! looks the applicant up.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use schemas::{BureauCaseId, BureauId, CaseStatus, CreditCode, Item, MessageId, Payload, Stage};

use crate::sim::BureauClient;
use crate::store::Store;

/// The listed applicant (its check character is right: GB 32100-2015).
const APPLICANT: &str = "91350100M000100Y43";
const ENTRY: &str = "FGJ-XY-DEMO-1";
const CASE: &str = "GH2026XY0001";

/// What the demo listed and sent.
pub(super) struct Listed {
    /// The warned permit's deliveries queued.
    pub(super) deliveries: usize,
    /// The bureaus told of the entry.
    pub(super) told: usize,
}

/// Lists the applicant and sends planning's permit for it.
pub(super) async fn list(
    clients: &BTreeMap<BureauId, Arc<BureauClient>>,
) -> Result<Listed, String> {
    let today = crate::clock::shanghai_now()
        .ok_or("the clock is outside the model's years")?
        .naive_local()
        .date();
    let line = crate::sim::credit_line(
        ENTRY,
        1,
        "dishonest",
        APPLICANT,
        &today.format("%Y-01-01").to_string(),
    );
    let reply = clients[&BureauId::Housing]
        .publish_credit(&[line])
        .await
        .map_err(|e| e.to_string())?;
    if reply.status != StatusCode::OK {
        return Err(format!(
            "the upload was answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    let upload: serde_json::Value = reply
        .parse("the upload receipt")
        .map_err(|e| e.to_string())?;
    let told = upload["deliveries"].as_u64().unwrap_or(0) as usize;

    let mut event =
        adapters::sample::case_event(&mut fastrand::Rng::with_seed(2026), BureauId::Planning);
    let mut case = event.case().cloned().ok_or("a sample case event")?;
    let now = crate::clock::shanghai_now().ok_or("the clock is outside the model's years")?;
    case.applicant.credit_code = CreditCode::parse(APPLICANT).map_err(|e| e.to_string())?;
    case.item = Item::ConstructionPlanningPermit;
    case.stage = Stage::EngineeringConstructionPermit;
    case.status = CaseStatus::Approved;
    case.submitted_at = schemas::ShanghaiTime::from_local(
        now.naive_local() - std::time::Duration::from_secs(3 * 3600),
    )
    .map_err(|e| e.to_string())?;
    event.message_id = MessageId::parse(&format!("{CASE}-1")).map_err(|e| e.to_string())?;
    event.case_id = BureauCaseId::parse(CASE).map_err(|e| e.to_string())?;
    event.sequence = 1;
    event.occurred_at = now;
    event.kind = CaseStatus::Approved.event_kind();
    event.payload = Payload::Case(case);
    let reply = clients[&BureauId::Planning]
        .send(&event, None)
        .await
        .map_err(|e| e.to_string())?;
    if reply.status != StatusCode::ACCEPTED {
        return Err(format!("the permit was answered {}", reply.status));
    }
    let receipt: serde_json::Value = reply.parse("the receipt").map_err(|e| e.to_string())?;
    Ok(Listed {
        deliveries: receipt["deliveries"].as_u64().unwrap_or(0) as usize,
        told,
    })
}

/// The lines the demo prints about the list, and whether the lookup shows the entry in effect
/// and the permit's case matched it once.
pub(super) async fn summary(
    store: &impl Store,
    clients: &BTreeMap<BureauId, Arc<BureauClient>>,
    listed: &Result<Listed, String>,
) -> (String, bool) {
    let listed = match listed {
        Ok(listed) => listed,
        Err(error) => return (format!("credit lists: FAILED: {error}"), false),
    };
    let lookup = match clients[&BureauId::Water]
        .get(&format!("/v1/credit/{APPLICANT}"))
        .await
    {
        Ok(reply) if reply.status == StatusCode::OK => reply
            .parse::<serde_json::Value>("the lookup")
            .unwrap_or_default(),
        Ok(reply) => {
            return (
                format!("credit lists: FAILED: lookup answered {}", reply.status),
                false,
            );
        }
        Err(error) => return (format!("credit lists: FAILED: {error}"), false),
    };
    let active = lookup["active"]
        .as_array()
        .is_some_and(|a| a.iter().any(|l| l["entry"]["entry_id"] == ENTRY));
    let matched = match BureauCaseId::parse(CASE) {
        Ok(case) => {
            store
                .credit_matches_of_case(BureauId::Planning, case, 10)
                .await
        }
        Err(problem) => return (format!("credit lists: FAILED: {CASE}: {problem}"), false),
    };
    let matched = match matched {
        Ok(found) => found,
        Err(error) => return (format!("credit lists: FAILED: {error}"), false),
    };
    let told = match matched.as_slice() {
        [one] if one.found.entry.entry_id.as_str() == ENTRY => one.receivers.len(),
        _ => {
            return (
                format!(
                    "credit lists: FAILED: the permit's case matched {} time(s), not once",
                    matched.len()
                ),
                false,
            );
        }
    };
    let warning = format!("dishonest;publisher=housing;entry=\"{ENTRY}\";version=1");
    (
        format!(
            "credit lists: housing listed applicant {APPLICANT} on the dishonest list (entry {ENTRY}); {} bureaus told in their own formats; \
             planning's permit {CASE} for it queued to {} bureaus, each delivery with `Credit-Warning: {warning}`; \
             the case matched once: a match notice to {told} bureaus (`gateway ctl credit` lists it); \
             water's lookup GET /v1/credit/{APPLICANT}: {}",
            listed.told,
            listed.deliveries,
            if active { "in effect" } else { "NOT FOUND" }
        ),
        active,
    )
}
