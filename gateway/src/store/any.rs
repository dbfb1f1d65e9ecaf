//! The store chosen by the configuration: `sqlite:PATH` (embedded, one node) or
//! `postgres://…` (shared by several nodes). One enum, so the rest of the gateway is written
//! once against [`Store`].

use schemas::{BureauCaseId, BureauId, MessageId, ProjectCode, SurveyId, SurveyKind};

use crate::config::StoreLocation;

use super::audit;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{
    Backlog, CreditMatchRecord, CreditRecord, DeadLetter, Delivery, DeliveryId, IngestOutcome,
    Millis, NewMessage, NodeReport, NodeReports, Outcome, Pause, QueueStat, ReadOf, ReplaySelector,
    Store, StoreError, SurveyRead, SurveyRecord, TimelineEvent, TimelineKey,
};

/// Either backend.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// Embedded SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl AnyStore {
    /// Opens (and migrates) the store at `location`.
    pub async fn open(location: &StoreLocation, pool_size: usize) -> Result<Self, StoreError> {
        match location {
            StoreLocation::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                    .await
                    .map_err(|e| StoreError::unavailable_from("opening the store", e))?
                    .map(Self::Sqlite)
            }
            StoreLocation::Postgres(url) => {
                PgStore::connect(url, pool_size).await.map(Self::Postgres)
            }
        }
    }
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call.await,
            AnyStore::Postgres($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn ingest(&self, message: NewMessage) -> Result<IngestOutcome, StoreError> {
        delegate!(self, s => s.ingest(message))
    }

    async fn lease_due(
        &self,
        node: &str,
        subscribers: Vec<BureauId>,
        now: Millis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        delegate!(self, s => s.lease_due(node, subscribers, now, lease_ms, limit))
    }

    async fn claim_node(&self, node: &str) -> Result<bool, StoreError> {
        delegate!(self, s => s.claim_node(node))
    }

    async fn release_leases(
        &self,
        node: &str,
        now: Millis,
        limit: usize,
    ) -> Result<u64, StoreError> {
        delegate!(self, s => s.release_leases(node, now, limit))
    }

    async fn record_outcomes(&self, outcomes: Vec<Outcome>) -> Result<Vec<bool>, StoreError> {
        delegate!(self, s => s.record_outcomes(outcomes))
    }

    async fn dead_letters(
        &self,
        subscriber: Option<BureauId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        delegate!(self, s => s.dead_letters(subscriber, limit))
    }

    async fn replay(
        &self,
        selector: ReplaySelector,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> Result<u64, StoreError> {
        delegate!(self, s => s.replay(selector, by, now, limit))
    }

    async fn feed_fetch(
        &self,
        subscriber: BureauId,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        delegate!(self, s => s.feed_fetch(subscriber, limit))
    }

    async fn feed_ack(
        &self,
        subscriber: BureauId,
        cursor: DeliveryId,
        now: Millis,
    ) -> Result<u64, StoreError> {
        delegate!(self, s => s.feed_ack(subscriber, cursor, now))
    }

    async fn backlogs(&self, subscribers: Vec<BureauId>) -> Result<Vec<Backlog>, StoreError> {
        delegate!(self, s => s.backlogs(subscribers))
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        delegate!(self, s => s.queue_stats())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        delegate!(self, s => s.ping())
    }

    async fn pause(&self, pause: Pause) -> Result<bool, StoreError> {
        delegate!(self, s => s.pause(pause))
    }

    async fn resume(
        &self,
        subscriber: BureauId,
        by: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.resume(subscriber, by, now))
    }

    async fn pauses(&self) -> Result<Vec<Pause>, StoreError> {
        delegate!(self, s => s.pauses())
    }

    async fn dead_letter(&self, id: DeliveryId) -> Result<Option<DeadLetter>, StoreError> {
        delegate!(self, s => s.dead_letter(id))
    }

    async fn purge(
        &self,
        selector: ReplaySelector,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> Result<u64, StoreError> {
        delegate!(self, s => s.purge(selector, by, now, limit))
    }

    async fn audit_chains(&self) -> Result<Vec<audit::ChainState>, StoreError> {
        delegate!(self, s => s.audit_chains())
    }

    async fn audit_entries(
        &self,
        chain: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<audit::AuditRow>, StoreError> {
        delegate!(self, s => s.audit_entries(chain, after_seq, limit))
    }

    async fn audit_of_message(
        &self,
        message_id: &MessageId,
        limit: usize,
    ) -> Result<Vec<audit::AuditRow>, StoreError> {
        delegate!(self, s => s.audit_of_message(message_id, limit))
    }

    async fn audit_of_bureau(
        &self,
        bureau: BureauId,
        from: Millis,
        to: Millis,
        after: Option<(Millis, String, i64)>,
        limit: usize,
    ) -> Result<Vec<audit::AuditRow>, StoreError> {
        delegate!(self, s => s.audit_of_bureau(bureau, from, to, after, limit))
    }

    async fn audit_entry(
        &self,
        chain: &str,
        seq: i64,
    ) -> Result<Option<audit::AuditRow>, StoreError> {
        delegate!(self, s => s.audit_entry(chain, seq))
    }

    async fn record_checkpoint(
        &self,
        checkpoint: audit::StoredCheckpoint,
    ) -> Result<i64, StoreError> {
        delegate!(self, s => s.record_checkpoint(checkpoint))
    }

    async fn checkpoints(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<audit::StoredCheckpoint>, StoreError> {
        delegate!(self, s => s.checkpoints(after, limit))
    }

    async fn raw_message(
        &self,
        sender: BureauId,
        idempotency_key: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        delegate!(self, s => s.raw_message(sender, idempotency_key))
    }

    async fn prune_audit(
        &self,
        chain: &str,
        before: Millis,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Option<audit::Anchor>, StoreError> {
        delegate!(self, s => s.prune_audit(chain, before, by, now, limit))
    }

    async fn flow_inbox(&self, limit: usize) -> Result<Vec<super::FlowEvent>, StoreError> {
        delegate!(self, s => s.flow_inbox(limit))
    }

    async fn commit_flow_steps(&self, steps: Vec<super::FlowStep>) -> Result<(), StoreError> {
        delegate!(self, s => s.commit_flow_steps(steps))
    }

    async fn joint_case(
        &self,
        id: &schemas::JointCaseId,
    ) -> Result<Option<super::joint::JointCase>, StoreError> {
        delegate!(self, s => s.joint_case(id))
    }

    async fn joint_cases_of_project(
        &self,
        project: &schemas::ProjectCode,
        limit: usize,
    ) -> Result<Vec<super::joint::JointCase>, StoreError> {
        delegate!(self, s => s.joint_cases_of_project(project, limit))
    }

    async fn open_joint_cases(
        &self,
        after: Option<&schemas::JointCaseId>,
        limit: usize,
    ) -> Result<Vec<super::joint::JointCase>, StoreError> {
        delegate!(self, s => s.open_joint_cases(after, limit))
    }

    async fn case_clock(
        &self,
        bureau: BureauId,
        case_id: &schemas::BureauCaseId,
    ) -> Result<Option<super::joint::CaseClock>, StoreError> {
        delegate!(self, s => s.case_clock(bureau, case_id))
    }

    async fn case_clocks_of_project(
        &self,
        project: &schemas::ProjectCode,
        limit: usize,
    ) -> Result<Vec<super::joint::CaseClock>, StoreError> {
        delegate!(self, s => s.case_clocks_of_project(project, limit))
    }

    async fn open_case_clocks(
        &self,
        after: Option<(BureauId, schemas::BureauCaseId)>,
        limit: usize,
    ) -> Result<Vec<super::joint::CaseClock>, StoreError> {
        delegate!(self, s => s.open_case_clocks(after, limit))
    }

    async fn events_received(
        &self,
        from: Millis,
        to: Millis,
        after: i64,
        limit: usize,
    ) -> Result<Vec<super::ReceivedEvent>, StoreError> {
        delegate!(self, s => s.events_received(from, to, after, limit))
    }

    async fn dead_letters_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(BureauId, u64)>, StoreError> {
        delegate!(self, s => s.dead_letters_between(from, to))
    }

    async fn frozen_report(&self, month: &str) -> Result<Option<String>, StoreError> {
        delegate!(self, s => s.frozen_report(month))
    }

    async fn freeze_report(
        &self,
        month: &str,
        body: String,
        at: Millis,
    ) -> Result<String, StoreError> {
        delegate!(self, s => s.freeze_report(month, body, at))
    }

    async fn timeline(
        &self,
        key: TimelineKey,
        limit: usize,
    ) -> Result<Vec<TimelineEvent>, StoreError> {
        delegate!(self, s => s.timeline(key, limit))
    }

    async fn record_node_report(&self, report: NodeReport) -> Result<(), StoreError> {
        delegate!(self, s => s.record_node_report(report))
    }

    async fn node_reports(&self, since: Millis, limit: usize) -> Result<NodeReports, StoreError> {
        delegate!(self, s => s.node_reports(since, limit))
    }

    async fn shared_secret(&self, name: &str, candidate: String) -> Result<String, StoreError> {
        delegate!(self, s => s.shared_secret(name, candidate))
    }

    async fn cleanup(&self, delivered_before: Millis, limit: usize) -> Result<u64, StoreError> {
        delegate!(self, s => s.cleanup(delivered_before, limit))
    }

    async fn credit_entries(
        &self,
        publisher: BureauId,
        entry_ids: Vec<BureauCaseId>,
        limit: usize,
    ) -> Result<Vec<CreditRecord>, StoreError> {
        delegate!(self, s => s.credit_entries(publisher, entry_ids, limit))
    }

    async fn credit_entries_of(
        &self,
        codes: Vec<schemas::CreditCode>,
        limit: usize,
    ) -> Result<Vec<CreditRecord>, StoreError> {
        delegate!(self, s => s.credit_entries_of(codes, limit))
    }

    async fn recent_credit_entries(&self, limit: usize) -> Result<Vec<CreditRecord>, StoreError> {
        delegate!(self, s => s.recent_credit_entries(limit))
    }

    async fn credit_matches_of_case(
        &self,
        bureau: BureauId,
        case_id: BureauCaseId,
        limit: usize,
    ) -> Result<Vec<CreditMatchRecord>, StoreError> {
        delegate!(self, s => s.credit_matches_of_case(bureau, case_id, limit))
    }

    async fn recent_credit_matches(
        &self,
        limit: usize,
    ) -> Result<Vec<CreditMatchRecord>, StoreError> {
        delegate!(self, s => s.recent_credit_matches(limit))
    }

    async fn survey(&self, id: SurveyId) -> Result<Option<SurveyRecord>, StoreError> {
        delegate!(self, s => s.survey(id))
    }

    async fn latest_survey(
        &self,
        project: ProjectCode,
        kind: SurveyKind,
    ) -> Result<Option<SurveyRecord>, StoreError> {
        delegate!(self, s => s.latest_survey(project, kind))
    }

    async fn record_survey_read(
        &self,
        id: SurveyId,
        bureau: BureauId,
        what: ReadOf,
        at: Millis,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.record_survey_read(id, bureau, what, at))
    }

    async fn survey_reads(
        &self,
        id: SurveyId,
        limit: usize,
    ) -> Result<Vec<SurveyRead>, StoreError> {
        delegate!(self, s => s.survey_reads(id, limit))
    }

    fn work_notifications(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match self {
            Self::Sqlite(s) => s.work_notifications(),
            Self::Postgres(s) => s.work_notifications(),
        }
    }
}
