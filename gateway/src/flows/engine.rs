//! The flows' task: takes committed events out of the store's inbox, applies them to joint cases
//! (`rules`), looks at the open clocks, and commits every step whole with the notices it sends.
//!
//! Every node runs it. Two nodes may take the same inbox event or the same joint case: the
//! store commits a step only over the revisions it was computed from (`StoreError::Conflict`
//! otherwise), and the loser reads again. The notices are plain messages from the gateway:
//! routed to the window and the branch bureaus (a joint-case notice) or to the bureau handling
//! the case (a deadline notice), delivered with the normal retry machinery in each bureau's own
//! format; their ids and idempotency keys are derived from what they tell.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use schemas::{BureauId, Event, JointStatus, ShanghaiDate, ShanghaiTime};

use super::FlowTable;
use super::overdue::{OverdueCase, OverdueList};
use super::rules::{self, Change};
use crate::clock::{Millis, now_ms};
use crate::delivery::wakers::Wakers;
use crate::ids;
use crate::store::joint::{CaseClock, Clock, JointCase};
use crate::store::{FlowEvent, FlowStep, NewMessage, Store, StoreError};

/// Inbox events taken per store call.
const INBOX_BATCH: usize = 64;
/// Joint cases of one project read per event (a project has a few).
const CASES_PER_PROJECT: usize = 64;
/// Open joint cases read per page of a clock tick.
const TICK_PAGE: usize = 256;
/// Attempts at one step when other nodes keep changing the same joint case.
const CONFLICT_RETRIES: usize = 5;

/// The flows of one node over its store.
pub struct FlowEngine<S> {
    store: S,
    table: FlowTable,
    wakers: Option<Arc<Wakers>>,
}

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Inbox events taken out.
    pub events: usize,
    /// Joint cases and case clocks written.
    pub cases: usize,
    /// Notices sent.
    pub notices: usize,
    /// Events applied again on their own after their batch conflicted.
    pub alone: usize,
}

impl Pass {
    /// Adds what `other` wrote and sent (the events are counted where they are taken).
    fn add(&mut self, other: Pass) {
        self.cases += other.cases;
        self.notices += other.notices;
        self.alone += other.alone;
    }
}

/// What the earlier steps of a batch wrote, not committed yet: the later steps read through it.
#[derive(Default)]
struct Overlay {
    cases: HashMap<schemas::JointCaseId, JointCase>,
    clocks: HashMap<(BureauId, schemas::BureauCaseId), CaseClock>,
}

impl Overlay {
    /// `read` (a project's joint cases as stored) with the batch's versions and new ones.
    fn joint_cases(&self, project: &schemas::ProjectCode, read: Vec<JointCase>) -> Vec<JointCase> {
        let mut cases: Vec<JointCase> = read
            .into_iter()
            .map(|case| self.cases.get(case.id()).cloned().unwrap_or(case))
            .collect();
        for case in self.cases.values() {
            if &case.notice.project.code == project && !cases.iter().any(|c| c.id() == case.id()) {
                cases.push(case.clone());
            }
        }
        cases.sort_by(|a, b| a.id().cmp(b.id()));
        cases
    }

    /// `read` (a project's case clocks as stored) with the batch's versions and new ones.
    fn clocks_of_project(
        &self,
        project: &schemas::ProjectCode,
        read: Vec<CaseClock>,
    ) -> Vec<CaseClock> {
        let mut clocks: Vec<CaseClock> = read
            .into_iter()
            .map(|clock| {
                self.clocks
                    .get(&(clock.bureau, clock.case_id.clone()))
                    .cloned()
                    .unwrap_or(clock)
            })
            .collect();
        for clock in self.clocks.values() {
            if &clock.project == project
                && !clocks
                    .iter()
                    .any(|c| c.bureau == clock.bureau && c.case_id == clock.case_id)
            {
                clocks.push(clock.clone());
            }
        }
        clocks
    }

    /// What a step writes.
    fn record(&mut self, step: &FlowStep) {
        for case in &step.cases {
            self.cases.insert(case.id().clone(), case.clone());
        }
        for clock in &step.clocks {
            self.clocks
                .insert((clock.bureau, clock.case_id.clone()), clock.clone());
        }
    }
}

/// What names a credit match: a case matches an entry once.
fn match_key(found: &crate::store::CreditMatchRecord) -> (BureauId, &str, BureauId, &str) {
    (
        found.found.publisher,
        found.found.entry.entry_id.as_str(),
        found.bureau,
        found.case_id.as_str(),
    )
}

/// A step computed and ready for the store, with what it did and whom its notices wake.
struct Prepared {
    step: FlowStep,
    subscribers: Vec<BureauId>,
    done: Pass,
}

impl<S: Store> FlowEngine<S> {
    /// The engine; `wakers` wakes this node's delivery workers for the notices it commits.
    pub fn new(store: S, table: FlowTable, wakers: Option<Arc<Wakers>>) -> Self {
        Self {
            store,
            table,
            wakers,
        }
    }

    /// Takes every event out of the inbox (in batches), applying each; returns what it did.
    ///
    /// The steps of a batch are computed one after the other, each reading the store as it was
    /// before the batch and, over it, what the batch's earlier steps wrote (an `Overlay`), and
    /// committed together in one transaction. Should the batch conflict (another node was first
    /// with one of its events, joint cases or clocks), each of its events is applied again on
    /// its own.
    pub async fn drain(&self, now: Millis) -> Result<Pass, StoreError> {
        let mut pass = Pass::default();
        loop {
            let batch = self.store.flow_inbox(INBOX_BATCH).await?;
            let full = batch.len() == INBOX_BATCH;
            pass.events += batch.len();
            pass.add(self.apply_batch(&batch, now).await?);
            if !full {
                return Ok(pass);
            }
        }
    }

    /// Computes the steps of a batch over one overlay and commits them in one transaction;
    /// after a conflict, applies each of its events alone.
    async fn apply_batch(&self, batch: &[FlowEvent], now: Millis) -> Result<Pass, StoreError> {
        if batch.is_empty() {
            return Ok(Pass::default());
        }
        let mut overlay = Overlay::default();
        let mut prepared = Vec::with_capacity(batch.len());
        for item in batch {
            let step = self.compute(item.id, &item.event, now, &overlay).await?;
            overlay.record(&step.step);
            prepared.push(step);
        }
        match self.commit_all(prepared).await {
            Err(StoreError::Conflict(reason)) => {
                tracing::debug!(message = "a batch of flow steps conflicted; applying each alone", %reason);
                let mut pass = Pass {
                    alone: batch.len(),
                    ..Pass::default()
                };
                for item in batch {
                    pass.add(self.apply(item.id, &item.event, now).await?);
                }
                Ok(pass)
            }
            other => other,
        }
    }

    /// Reads what `event` bears on (its project's joint cases, its case's clock and, when it
    /// opens a joint case, the project's case clocks), as `overlay` changes them, and computes
    /// its step.
    async fn compute(
        &self,
        id: i64,
        event: &Event,
        now: Millis,
        overlay: &Overlay,
    ) -> Result<Prepared, StoreError> {
        let Some(project) = event.project() else {
            // Only case events enter the inbox; anything else has nothing to apply.
            return self.prepare(Some(id), Vec::new(), Vec::new(), Vec::new(), now);
        };
        let existing = overlay.joint_cases(
            project,
            self.store
                .joint_cases_of_project(project, CASES_PER_PROJECT)
                .await?,
        );
        let own = if self.table.clocks_every_case() && event.case().is_some() {
            let key = (event.source, event.case_id.clone());
            match overlay.clocks.get(&key) {
                Some(clock) => Some(clock.clone()),
                None => self.store.case_clock(event.source, &event.case_id).await?,
            }
        } else {
            None
        };
        // Only an event that opens a joint case takes in the project's case clocks.
        let of_project = if self.table.opened_by(event).next().is_some() {
            overlay.clocks_of_project(
                project,
                self.store
                    .case_clocks_of_project(project, CASES_PER_PROJECT)
                    .await?,
            )
        } else {
            Vec::new()
        };
        let step = rules::apply_event(
            &self.table,
            event,
            &existing,
            own.as_ref(),
            &of_project,
            now,
        );
        let mut prepared = self.prepare(Some(id), step.changes, step.clocks, Vec::new(), now)?;
        for notice in self.credit_matches(event, now).await? {
            prepared.subscribers.extend(
                notice
                    .events
                    .iter()
                    .flat_map(|e| e.subscribers.iter().copied()),
            );
            prepared.done.notices += 1;
            prepared.step.notices.push(notice);
        }
        Ok(prepared)
    }

    /// The match notices of a case event of a listed applicant: one per entry it was warned
    /// of and the case has not matched before (the case's earlier events sent those), each
    /// keyed by (entry, case) so that a notice made twice is written once.
    async fn credit_matches(
        &self,
        event: &Event,
        now: Millis,
    ) -> Result<Vec<NewMessage>, StoreError> {
        if event.credit_warnings.is_empty() {
            return Ok(Vec::new());
        }
        let at = notice_time(now).ok_or_else(|| {
            StoreError::unavailable("the system clock is outside the years the model accepts")
        })?;
        let matched = self
            .store
            .credit_matches_of_case(
                event.source,
                event.case_id.clone(),
                crate::credit::MAX_MATCHES_READ,
            )
            .await?;
        let mut out = Vec::new();
        for warning in &event.credit_warnings {
            if matched.iter().any(|m| {
                m.found.publisher == warning.publisher && m.found.entry.entry_id == warning.entry_id
            }) {
                continue;
            }
            let versions = self
                .store
                .credit_entries(
                    warning.publisher,
                    vec![warning.entry_id.clone()],
                    crate::credit::MAX_VERSIONS_READ,
                )
                .await?;
            let Some(record) = versions.iter().find(|r| r.entry.version == warning.version) else {
                tracing::error!(message = "a warned entry version is not stored", entry = %warning.entry_id, version = warning.version);
                continue;
            };
            out.extend(crate::credit::match_message(
                self.table.credit(),
                event,
                record,
                at,
                now,
            )?);
        }
        Ok(out)
    }

    /// Applies one inbox event alone, reading again after a conflict.
    async fn apply(&self, id: i64, event: &Event, now: Millis) -> Result<Pass, StoreError> {
        for _ in 0..CONFLICT_RETRIES {
            let prepared = self.compute(id, event, now, &Overlay::default()).await?;
            match self.commit_all(vec![prepared]).await {
                Err(StoreError::Conflict(reason)) => {
                    tracing::debug!(message = "flow step conflicted; reading again", %reason);
                    // Another node may have taken the event itself: then it is gone.
                    if !self
                        .store
                        .flow_inbox(INBOX_BATCH)
                        .await?
                        .iter()
                        .any(|e| e.id == id)
                    {
                        return Ok(Pass::default());
                    }
                }
                other => return other,
            }
        }
        Err(StoreError::unavailable(
            "a joint case kept changing under the flows",
        ))
    }

    /// Looks at every open joint case and case clock on `today`: unsupplied documents past
    /// their deadline, clocks due soon or overdue. Returns what it did and refreshes the clock
    /// gauges.
    pub async fn tick(&self, today: NaiveDate, now: Millis) -> Result<Pass, StoreError> {
        let mut pass = Pass::default();
        let mut gauges = Gauges::default();
        let mut after = None;
        loop {
            let page = self
                .store
                .open_case_clocks(after.clone(), TICK_PAGE)
                .await?;
            let full = page.len() == TICK_PAGE;
            after = page.last().map(|c| (c.bureau, c.case_id.clone()));
            for clock in page {
                let clock = match rules::tick_case_clock(&self.table, &clock, today, now) {
                    None => clock,
                    Some((next, deadline)) => {
                        let step = self.prepare(
                            None,
                            Vec::new(),
                            vec![next.clone()],
                            vec![deadline],
                            now,
                        )?;
                        if self.commit_tick(step, &mut pass).await? {
                            next
                        } else {
                            clock
                        }
                    }
                };
                gauges.count_clock(&self.table, &clock, today);
            }
            if !full {
                break;
            }
        }
        let mut after = None;
        loop {
            let page = self
                .store
                .open_joint_cases(after.as_ref(), TICK_PAGE)
                .await?;
            let full = page.len() == TICK_PAGE;
            after = page.last().map(|c| c.id().clone());
            for case in page {
                let case = match rules::tick(&self.table, &case, today, now) {
                    None => case,
                    Some(change) => {
                        let next = change.case.clone();
                        let step = self.prepare(None, vec![change], Vec::new(), Vec::new(), now)?;
                        if self.commit_tick(step, &mut pass).await? {
                            next
                        } else {
                            case
                        }
                    }
                };
                gauges.count(&self.table, &case, today);
            }
            if !full {
                break;
            }
        }
        gauges.publish(&self.table, today, now);
        Ok(pass)
    }

    /// Commits what a tick changed of one joint case or clock, adding it to `pass`: `false`
    /// when another node changed it first (the next tick looks again).
    async fn commit_tick(&self, step: Prepared, pass: &mut Pass) -> Result<bool, StoreError> {
        match self.commit_all(vec![step]).await {
            Ok(done) => {
                pass.add(done);
                Ok(true)
            }
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// A step as the store takes it: its notices made.
    fn prepare(
        &self,
        event: Option<i64>,
        changes: Vec<Change>,
        clocks: Vec<CaseClock>,
        clock_deadlines: Vec<rules::Deadline>,
        now: Millis,
    ) -> Result<Prepared, StoreError> {
        let mut notices = Vec::new();
        let stamp = || {
            notice_time(now).ok_or_else(|| {
                StoreError::unavailable("the system clock is outside the years the model accepts")
            })
        };
        for change in &changes {
            if change.joint_notice {
                notices.push(joint_message(&change.case, stamp()?, now)?);
            }
            for deadline in &change.deadlines {
                let by = format!("clock of flow {}", change.case.notice.flow.as_str());
                notices.push(deadline_message(deadline, by, stamp()?, now)?);
            }
        }
        for deadline in &clock_deadlines {
            let by = format!("time limit of {}", deadline.notice.item.code());
            notices.push(deadline_message(deadline, by, stamp()?, now)?);
        }
        let subscribers: Vec<BureauId> = notices
            .iter()
            .flat_map(|m| m.events.iter().flat_map(|e| e.subscribers.iter().copied()))
            .collect();
        let done = Pass {
            events: usize::from(event.is_some()),
            cases: changes.len() + clocks.len(),
            notices: notices.len(),
            alone: 0,
        };
        Ok(Prepared {
            step: FlowStep {
                event,
                cases: changes.into_iter().map(|c| c.case).collect(),
                clocks,
                notices,
            },
            subscribers,
            done,
        })
    }

    /// Commits prepared steps in one transaction, then wakes the delivery workers of their
    /// notices' subscribers.
    async fn commit_all(&self, prepared: Vec<Prepared>) -> Result<Pass, StoreError> {
        let mut done = Pass::default();
        let mut subscribers = Vec::new();
        let mut steps = Vec::with_capacity(prepared.len());
        let mut matches = Vec::new();
        for p in prepared {
            done.events += p.done.events;
            done.add(p.done);
            subscribers.extend(p.subscribers);
            matches.extend(p.step.notices.iter().filter_map(|n| n.credit_match.clone()));
            steps.push(p.step);
        }
        self.store.commit_flow_steps(steps).await?;
        if let Some(wakers) = &self.wakers {
            subscribers.sort_unstable_by_key(|b| b.as_str());
            subscribers.dedup();
            wakers.wake_for(subscribers);
        }
        for _ in 0..done.notices {
            metrics::counter!(crate::metrics::FLOW_NOTICES).increment(1);
        }
        // Counted once committed, so that a step read again after a conflict counts once, and
        // once per (entry, case) when a batch holds several events of the case.
        matches.sort_by(|a, b| match_key(a).cmp(&match_key(b)));
        matches.dedup_by(|a, b| match_key(a) == match_key(b));
        for found in matches {
            metrics::counter!(crate::metrics::CREDIT_MATCHES, "bureau" => found.bureau.as_str(), "list" => found.found.entry.list.code())
                .increment(1);
        }
        Ok(done)
    }

    /// Runs until shutdown: drains the inbox every half second (and at once when woken by a
    /// commit of this node), ticks the clocks every `interval`.
    pub async fn run(self, interval: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut next_tick = tokio::time::Instant::now();
        // The calendar warning is logged when it first appears or changes, not every tick (the
        // readiness check, the metric and the dashboard keep showing it).
        let mut warned: Option<String> = None;
        loop {
            if let Err(error) = self.drain(now_ms()).await {
                error.count();
                tracing::warn!(
                    message = "the flows cannot read or commit; the events stay in their inbox and are applied later",
                    error = &error as &dyn std::error::Error
                );
            }
            if tokio::time::Instant::now() >= next_tick {
                next_tick += interval;
                let warning = self.table.calendar_warning();
                if let Some(text) = &warning
                    && warned.as_ref() != Some(text)
                {
                    tracing::warn!(message = "next year's working-day calendar is missing", warning = %text);
                }
                warned = warning;
                match crate::clock::shanghai_now() {
                    Some(now) => {
                        if let Err(error) = self.tick(now.naive_local().date(), now_ms()).await {
                            error.count();
                            tracing::warn!(
                                message = "the flows cannot look at the clocks; the next interval tries again",
                                error = &error as &dyn std::error::Error
                            );
                        }
                    }
                    None => {
                        tracing::warn!(message = "the system clock is outside the model's years")
                    }
                }
            }
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}

/// When a notice is sent: now, in Shanghai time; `None` for a system clock outside the years
/// the model accepts (the step is then not committed, and tried again).
fn notice_time(now: Millis) -> Option<ShanghaiTime> {
    let seconds = now / 1000 + 8 * 3600;
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.naive_utc())
        .and_then(|local| ShanghaiTime::from_local(local).ok())
}

/// The joint case's new version, for the window and every branch bureau.
fn joint_message(
    case: &JointCase,
    at: ShanghaiTime,
    now: Millis,
) -> Result<NewMessage, StoreError> {
    let notice = &case.notice;
    let what = format!("{}/v{}", notice.joint_case_id.as_str(), notice.version);
    let mut subscribers = vec![notice.window];
    for branch in &notice.branches {
        if !subscribers.contains(&branch.bureau) {
            subscribers.push(branch.bureau);
        }
    }
    let event = Event::for_joint(ids::flow_notice_id(&what), at, notice.clone());
    NewMessage::notice(
        notice.window,
        &what,
        event,
        subscribers,
        &format!("flow {}", notice.flow.as_str()),
        now,
    )
}

/// A deadline notice, for the bureau handling the case (`routed_by`: which clock sent it).
fn deadline_message(
    deadline: &rules::Deadline,
    routed_by: String,
    at: ShanghaiTime,
    now: Millis,
) -> Result<NewMessage, StoreError> {
    // Keyed by the clock it comes from: the joint case's, or the case's own.
    let what = format!(
        "{}/{}:{}/deadline/{}",
        deadline
            .notice
            .joint_case_id
            .as_ref()
            .map_or("clock", |id| id.as_str()),
        deadline.bureau.as_str(),
        deadline.case_id.as_str(),
        deadline.sequence
    );
    let event = Event::for_deadline(
        ids::flow_notice_id(&what),
        deadline.bureau,
        deadline.case_id.clone(),
        deadline.sequence,
        at,
        deadline.notice.clone(),
    );
    NewMessage::notice(
        deadline.bureau,
        &what,
        event,
        vec![deadline.bureau],
        &routed_by,
        now,
    )
}

/// The clock gauges of one tick: open, due soon and overdue cases per bureau (branches of open
/// joint cases and cases on their own clock).
#[derive(Default)]
struct Gauges {
    counts: std::collections::BTreeMap<(BureauId, &'static str), u64>,
    overdue: OverdueList,
}

/// Whose clock a gauge counts.
struct Who<'a> {
    bureau: BureauId,
    case_id: &'a schemas::BureauCaseId,
    item: schemas::Item,
    project: &'a schemas::ProjectCode,
    joint_case_id: Option<&'a schemas::JointCaseId>,
}

impl Gauges {
    fn count(&mut self, table: &FlowTable, case: &JointCase, today: NaiveDate) {
        if case.notice.status != JointStatus::Open {
            return;
        }
        let project = &case.notice.project.code;
        for (branch, clock) in case.notice.branches.iter().zip(&case.clocks) {
            if let Some(case_id) = &branch.case_id {
                let who = Who {
                    bureau: branch.bureau,
                    case_id,
                    item: branch.item,
                    project,
                    joint_case_id: Some(case.id()),
                };
                self.add(&who, &clock.clock, table, today);
            }
        }
        // The application as a whole: overdue is listed, not counted (its branches are).
        if let Some(flow) = table.flow(case.notice.flow.as_str())
            && let Some((due, left)) = rules::standing(&case.clock, table.calendar(), today)
            && left < 0
        {
            self.overdue.push(OverdueCase {
                bureau: case.notice.window,
                case_id: case.notice.window_case_id.clone(),
                item: flow.item,
                project: project.clone(),
                due_on: ShanghaiDate::new(due.date),
                working_days_overdue: -left,
                joint_case_id: Some(case.id().clone()),
            });
        }
    }

    fn count_clock(&mut self, table: &FlowTable, clock: &CaseClock, today: NaiveDate) {
        if clock.is_open() && clock.clock.started_on.is_some() {
            let who = Who {
                bureau: clock.bureau,
                case_id: &clock.case_id,
                item: clock.item,
                project: &clock.project,
                joint_case_id: None,
            };
            self.add(&who, &clock.clock, table, today);
        }
    }

    fn add(&mut self, who: &Who<'_>, clock: &Clock, table: &FlowTable, today: NaiveDate) {
        if clock.stopped_on.is_some() {
            return;
        }
        *self.counts.entry((who.bureau, "open")).or_default() += 1;
        if let Some((due, left)) = rules::standing(clock, table.calendar(), today) {
            let state = if left < 0 {
                self.overdue.push(OverdueCase {
                    bureau: who.bureau,
                    case_id: who.case_id.clone(),
                    item: who.item,
                    project: who.project.clone(),
                    due_on: ShanghaiDate::new(due.date),
                    working_days_overdue: -left,
                    joint_case_id: who.joint_case_id.cloned(),
                });
                "overdue"
            } else if left <= i64::from(table.warn_before()) {
                "due_soon"
            } else {
                return;
            };
            *self.counts.entry((who.bureau, state)).or_default() += 1;
        }
    }

    fn publish(mut self, table: &FlowTable, today: NaiveDate, now: Millis) {
        self.overdue.settle();
        self.overdue.as_of = Some(ShanghaiDate::new(today));
        self.overdue.looked_at = now;
        table.set_overdue(self.overdue);
        for bureau in BureauId::ALL {
            for state in ["open", "due_soon", "overdue"] {
                let n = self.counts.get(&(bureau, state)).copied().unwrap_or(0);
                metrics::gauge!(crate::metrics::CLOCKS, "bureau" => bureau.as_str(), "state" => state)
                    .set(n as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::flows::rules::tests::case_event;
    use crate::ids::IdempotencyKey;
    use crate::store::NewEvent;
    use crate::store::any::AnyStore;
    use crate::testing::{PgSchema, TempDir, postgres_server};
    use crate::workdays::Calendar;
    use schemas::{CaseStatus, EventKind, Item};

    fn table() -> FlowTable {
        FlowTable::new(&Config::from_layers(&[], &[]).unwrap(), Calendar::builtin())
    }

    /// Commits `event` as its bureau sends it (under `key`), in the flows' inbox when they want it.
    async fn send<S: Store>(store: &S, table: &FlowTable, key: &str, event: Event) {
        let message = NewMessage {
            sender: event.source,
            idempotency_key: IdempotencyKey::from_header(key.as_bytes()).unwrap(),
            content_type: "application/json".into(),
            body: key.as_bytes().to_vec(),
            sha256: ids::sha256(key.as_bytes()),
            received_at: 1,
            events: vec![NewEvent {
                source_message_id: event.message_id.clone(),
                for_flows: table.wants(&event),
                event: Event {
                    message_id: ids::mint_message_id(),
                    ..event
                },
                subscribers: vec![],
                routed_by: vec![],
            }],
            survey: None,
            credit: Vec::new(),
            credit_match: None,
        };
        store.ingest(message).await.unwrap();
    }

    /// Everything queued for `bureau`, delivered queue head by queue head: (sequence, kind).
    async fn told<S: Store>(store: &S, bureau: BureauId) -> Vec<(u64, EventKind)> {
        let mut out = Vec::new();
        loop {
            let leased = store
                .lease_due("t", vec![bureau], i64::MAX / 2, 1_000, 100)
                .await
                .unwrap();
            if leased.is_empty() {
                return out;
            }
            for delivery in leased {
                out.push((delivery.event.sequence, delivery.event.kind));
                store.mark_delivered(&delivery, 2).await.unwrap();
            }
        }
    }

    async fn stores(label: &str) -> Vec<(Option<PgSchema>, TempDir, AnyStore)> {
        let dir = TempDir::new(label);
        let sqlite = AnyStore::open(
            &crate::config::StoreLocation::Sqlite(dir.path().join("s.db")),
            1,
        )
        .await
        .unwrap();
        let mut out = vec![(None, dir, sqlite)];
        if let Some(server) = postgres_server("flows engine tests") {
            let schema = PgSchema::new(&server);
            let pg = AnyStore::open(&crate::config::StoreLocation::Postgres(schema.url()), 4)
                .await
                .unwrap();
            out.push((Some(schema), TempDir::new(label), pg));
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_joint_case_is_opened_once_and_told_in_every_bureau_queue() {
        let table = table();
        for (_schema, _dir, store) in stores("flows-once").await {
            let engine = FlowEngine::new(store.clone(), table.clone(), None);
            let accepted = case_event(
                BureauId::Planning,
                Item::ConstructionPlanningPermit,
                CaseStatus::Accepted,
                "GH2026000123",
                2,
                "2026-02-13",
            );
            send(&store, &table, "w-1", accepted.clone()).await;
            send(&store, &table, "w-1", accepted.clone()).await; // a resend: a duplicate
            send(&store, &table, "w-1-again", accepted.clone()).await; // under a new key
            let pass = engine.drain(10).await.unwrap();
            assert_eq!((pass.events, pass.cases, pass.notices), (2, 1, 1));
            let cases = store
                .joint_cases_of_project(accepted.project().unwrap(), 10)
                .await
                .unwrap();
            assert_eq!(cases.len(), 1);
            for bureau in [
                BureauId::Planning,
                BureauId::CivilDefense,
                BureauId::Greenery,
            ] {
                assert_eq!(
                    told(&store, bureau).await,
                    [(1, EventKind::JointOpened)],
                    "{bureau}"
                );
            }
            let rejected = case_event(
                BureauId::CivilDefense,
                Item::CivilDefenseDesignReview,
                CaseStatus::Rejected,
                "RF2026000457",
                1,
                "2026-02-24",
            );
            send(&store, &table, "c-1", rejected).await;
            engine.drain(20).await.unwrap();
            assert_eq!(
                told(&store, BureauId::Planning).await,
                [(2, EventKind::JointRejected)]
            );
            for bureau in [BureauId::Water, BureauId::TrafficPolice] {
                let expected = [(1, EventKind::JointOpened), (2, EventKind::JointRejected)];
                assert_eq!(told(&store, bureau).await, expected, "{bureau}");
            }
            assert!(store.flow_inbox(10).await.unwrap().is_empty());
            assert!(store.open_joint_cases(None, 10).await.unwrap().is_empty());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_on_postgresql_open_a_joint_case_once() {
        let Some(server) = postgres_server("flows engine tests") else {
            return;
        };
        let schema = PgSchema::new(&server);
        let location = crate::config::StoreLocation::Postgres(schema.url());
        let one = AnyStore::open(&location, 4).await.unwrap();
        let two = AnyStore::open(&location, 4).await.unwrap();
        let table = table();
        // Twenty applications, each sent twice under different keys, drained by both nodes at once.
        for n in 0..20 {
            let event = case_event(
                BureauId::Planning,
                Item::ConstructionPlanningPermit,
                CaseStatus::Accepted,
                &format!("GH2026{n:06}"),
                2,
                "2026-02-13",
            );
            send(&one, &table, &format!("a-{n}"), event.clone()).await;
            send(&two, &table, &format!("b-{n}"), event).await;
        }
        let (e1, e2) = (
            FlowEngine::new(one.clone(), table.clone(), None),
            FlowEngine::new(two.clone(), table.clone(), None),
        );
        let (p1, p2) = tokio::join!(e1.drain(5), e2.drain(5));
        let (p1, p2) = (p1.unwrap(), p2.unwrap());
        assert_eq!(p1.cases + p2.cases, 20, "{p1:?} {p2:?}");
        assert!(one.flow_inbox(100).await.unwrap().is_empty());
        assert_eq!(one.open_joint_cases(None, 100).await.unwrap().len(), 20);
        let notices = told(&one, BureauId::Water).await;
        assert_eq!(notices.len(), 20, "one opening notice per joint case");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tick_sends_deadline_notices_to_the_branch_bureau_once() {
        let table = table();
        for (_schema, _dir, store) in stores("flows-tick").await {
            let engine = FlowEngine::new(store.clone(), table.clone(), None);
            for (i, event) in [
                case_event(
                    BureauId::Planning,
                    Item::ConstructionPlanningPermit,
                    CaseStatus::Accepted,
                    "GH2026000123",
                    2,
                    "2026-02-13",
                ),
                case_event(
                    BureauId::Water,
                    Item::WaterSupplyConnection,
                    CaseStatus::Accepted,
                    "SW2026001024",
                    1,
                    "2026-02-24",
                ),
            ]
            .into_iter()
            .enumerate()
            {
                send(&store, &table, &format!("k-{i}"), event).await;
            }
            engine.drain(10).await.unwrap();
            assert_eq!(
                told(&store, BureauId::Water).await,
                [(1, EventKind::JointOpened), (2, EventKind::JointUpdated)]
            );
            // Six working days from 24 February: 25, 26, 27, 28 February, 2 and 3 March.
            let date = |t: &str| NaiveDate::parse_from_str(t, "%Y-%m-%d").unwrap();
            assert_eq!(
                engine.tick(date("2026-02-27"), 20).await.unwrap().notices,
                0
            );
            assert_eq!(
                engine.tick(date("2026-03-02"), 21).await.unwrap().notices,
                1
            );
            assert_eq!(
                engine.tick(date("2026-03-02"), 22).await.unwrap().notices,
                0
            );
            assert_eq!(
                engine.tick(date("2026-03-05"), 23).await.unwrap().notices,
                1
            );
            let leased = store
                .lease_due("t", vec![BureauId::Water], i64::MAX / 2, 1_000, 10)
                .await
                .unwrap();
            assert_eq!(leased.len(), 1, "one queue: the water case's");
            let first = leased[0].event.deadline().unwrap();
            assert_eq!(first.state, schemas::DeadlineState::Approaching);
            assert_eq!(leased[0].event.case_id.as_str(), "SW2026001024");
            store.mark_delivered(&leased[0], 30).await.unwrap();
            let leased = store
                .lease_due("t", vec![BureauId::Water], i64::MAX / 2, 1_000, 10)
                .await
                .unwrap();
            let passed = leased[0].event.deadline().unwrap();
            assert_eq!(passed.state, schemas::DeadlineState::Passed);
            assert_eq!(
                (passed.working_days, passed.due.on.get()),
                (2, date("2026-03-03"))
            );
            assert_eq!(leased[0].event.sequence, 2);
            // The planning window hears nothing of a branch's clock.
            let window: Vec<_> = told(&store, BureauId::Planning).await;
            assert_eq!(
                window,
                [(1, EventKind::JointOpened), (2, EventKind::JointUpdated)]
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cases_on_their_own_clock_are_warned_then_taken_in_by_a_joint_case_opened_later() {
        let table = table();
        let date = |t: &str| NaiveDate::parse_from_str(t, "%Y-%m-%d").unwrap();
        for (_schema, _dir, store) in stores("flows-case-clocks").await {
            let engine = FlowEngine::new(store.clone(), table.clone(), None);
            // Two branch cases filed before the window's application: each on its own clock.
            let police = case_event(
                BureauId::TrafficPolice,
                Item::RoadWorksTrafficSafety,
                CaseStatus::Accepted,
                "JJ2026000077",
                1,
                "2026-02-24",
            );
            let water = case_event(
                BureauId::Water,
                Item::WaterSupplyConnection,
                CaseStatus::Accepted,
                "SW2026001024",
                1,
                "2026-02-13",
            );
            send(&store, &table, "tp-1", police.clone()).await;
            send(&store, &table, "w-1", water.clone()).await;
            send(&store, &table, "tp-1-again", police.clone()).await; // resent: nothing moves
            let pass = engine.drain(10).await.unwrap();
            assert_eq!((pass.events, pass.cases, pass.notices), (3, 2, 0));
            assert_eq!(store.open_case_clocks(None, 10).await.unwrap().len(), 2);
            // One working day from 24 February: due 25 February, warned at once, passed on 26.
            assert_eq!(
                engine.tick(date("2026-02-24"), 20).await.unwrap().notices,
                1
            );
            assert_eq!(
                engine.tick(date("2026-02-25"), 21).await.unwrap().notices,
                0
            );
            assert_eq!(
                engine.tick(date("2026-02-26"), 22).await.unwrap().notices,
                1
            );
            let mut states = Vec::new();
            loop {
                let leased = store
                    .lease_due("t", vec![BureauId::TrafficPolice], i64::MAX / 2, 1_000, 10)
                    .await
                    .unwrap();
                let Some(delivery) = leased.first() else {
                    break;
                };
                let notice = delivery.event.deadline().unwrap();
                assert_eq!(notice.joint_case_id, None);
                assert_eq!(delivery.event.case_id.as_str(), "JJ2026000077");
                states.push((delivery.event.sequence, notice.state, notice.working_days));
                store.mark_delivered(delivery, 30).await.unwrap();
            }
            assert_eq!(
                states,
                [
                    (1, schemas::DeadlineState::Approaching, 1),
                    (2, schemas::DeadlineState::Passed, 1)
                ]
            );
            assert!(
                told(&store, BureauId::Water).await.is_empty(),
                "4 working days left"
            );
            // The overdue list of that tick: the police case, one working day late.
            let overdue = table.overdue();
            assert_eq!(overdue.as_of.map(|d| d.get()), Some(date("2026-02-26")));
            assert_eq!(overdue.total, 1);
            assert_eq!(
                (
                    overdue.cases[0].case_id.as_str(),
                    overdue.cases[0].working_days_overdue,
                    overdue.cases[0].joint_case_id.clone()
                ),
                ("JJ2026000077", 1, None)
            );

            // The window's application opens the joint case, which takes both cases in.
            let window = case_event(
                BureauId::Planning,
                Item::ConstructionPlanningPermit,
                CaseStatus::Accepted,
                "GH2026000123",
                2,
                "2026-02-26",
            );
            send(&store, &table, "gh-1", window.clone()).await;
            engine.drain(40).await.unwrap();
            let joint = store
                .joint_cases_of_project(window.project().unwrap(), 10)
                .await
                .unwrap()
                .pop()
                .unwrap();
            let branch = |bureau| {
                joint
                    .notice
                    .branches
                    .iter()
                    .position(|b| b.bureau == bureau)
                    .unwrap()
            };
            let w = branch(BureauId::Water);
            assert_eq!(
                joint.notice.branches[w]
                    .case_id
                    .as_ref()
                    .map(|c| c.as_str()),
                Some("SW2026001024")
            );
            assert_eq!(
                joint.notice.branches[w].status,
                schemas::BranchStatus::Accepted
            );
            // Counted from the water case's own acceptance on 13 February: due 28 February.
            assert_eq!(
                joint.notice.branches[w].due.unwrap().on.get(),
                date("2026-02-28")
            );
            let p = branch(BureauId::TrafficPolice);
            assert!(
                joint.clocks[p].clock.passed,
                "its notices are not sent again"
            );
            assert!(store.open_case_clocks(None, 10).await.unwrap().is_empty());
            let taken = store
                .case_clock(BureauId::Water, &water.case_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(taken.joint_case_id.as_ref(), Some(joint.id()));

            // From now on the branch's clock speaks, naming the joint case.
            assert_eq!(
                engine.tick(date("2026-03-02"), 50).await.unwrap().notices,
                1
            );
            let leased = store
                .lease_due("t", vec![BureauId::Water], i64::MAX / 2, 1_000, 10)
                .await
                .unwrap();
            let deadlines: Vec<_> = leased.iter().filter_map(|d| d.event.deadline()).collect();
            assert_eq!(deadlines.len(), 1, "{leased:?}");
            assert_eq!(deadlines[0].state, schemas::DeadlineState::Passed);
            assert_eq!(deadlines[0].joint_case_id.as_ref(), Some(joint.id()));
            // A later event of the water case moves the branch, not a clock of its own.
            let approved = case_event(
                BureauId::Water,
                Item::WaterSupplyConnection,
                CaseStatus::Approved,
                "SW2026001024",
                2,
                "2026-03-03",
            );
            send(&store, &table, "w-2", approved).await;
            engine.drain(60).await.unwrap();
            let after = store.joint_case(joint.id()).await.unwrap().unwrap();
            assert_eq!(
                after.notice.branches[w].status,
                schemas::BranchStatus::Approved
            );
            assert!(store.open_case_clocks(None, 10).await.unwrap().is_empty());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_drain_of_a_whole_application_applies_each_event_over_the_ones_before_it() {
        let table = table();
        for (_schema, _dir, store) in stores("flows-batch").await {
            let engine = FlowEngine::new(store.clone(), table.clone(), None);
            let events = [
                (
                    BureauId::Planning,
                    Item::ConstructionPlanningPermit,
                    CaseStatus::Accepted,
                    "GH2026000123",
                    2,
                ),
                (
                    BureauId::CivilDefense,
                    Item::CivilDefenseDesignReview,
                    CaseStatus::Accepted,
                    "RF2026000457",
                    1,
                ),
                (
                    BureauId::Water,
                    Item::WaterSupplyConnection,
                    CaseStatus::Accepted,
                    "SW2026001024",
                    1,
                ),
                (
                    BureauId::TrafficPolice,
                    Item::RoadWorksTrafficSafety,
                    CaseStatus::Accepted,
                    "JJ2026000077",
                    1,
                ),
                (
                    BureauId::CivilDefense,
                    Item::CivilDefenseDesignReview,
                    CaseStatus::Approved,
                    "RF2026000457",
                    2,
                ),
                (
                    BureauId::Water,
                    Item::WaterSupplyConnection,
                    CaseStatus::Approved,
                    "SW2026001024",
                    2,
                ),
                (
                    BureauId::TrafficPolice,
                    Item::RoadWorksTrafficSafety,
                    CaseStatus::Approved,
                    "JJ2026000077",
                    2,
                ),
                // A case of the same project outside the flow: its own clock, in the same batch.
                (
                    BureauId::Greenery,
                    Item::TreeFelling,
                    CaseStatus::Accepted,
                    "LH2026000999",
                    1,
                ),
            ];
            for (i, (bureau, item, status, id, seq)) in events.into_iter().enumerate() {
                let event = case_event(bureau, item, status, id, seq, "2026-02-24");
                send(&store, &table, &format!("b-{i}"), event).await;
            }
            let pass = engine.drain(10).await.unwrap();
            // Every event applied over the ones before it: the joint case written 7 times in
            // the batch, one clock, 7 versions told.
            assert_eq!((pass.events, pass.cases, pass.notices), (8, 8, 7));
            assert_eq!(pass.alone, 0, "the batch did not conflict with itself");
            let joint = store.open_joint_cases(None, 10).await.unwrap();
            assert!(joint.is_empty(), "approved, so not open: {joint:?}");
            let told = told(&store, BureauId::Planning).await;
            let versions: Vec<u64> = told.iter().map(|(sequence, _)| *sequence).collect();
            assert_eq!(versions, (1..=7).collect::<Vec<_>>());
            assert_eq!(
                told.last().map(|(_, kind)| *kind),
                Some(EventKind::JointApproved)
            );
            let own = store.open_case_clocks(None, 10).await.unwrap();
            assert_eq!(own.len(), 1);
            assert_eq!(own[0].case_id.as_str(), "LH2026000999");
            assert!(store.flow_inbox(10).await.unwrap().is_empty());
        }
    }
}
