//! What an event, or the passing of a day, does to joint cases: pure functions of the flows,
//! the calendar, the stored joint cases and the day, so every rule is tested without a store.
//!
//! - A window's case event of a flow's kind, item (and stage) opens the flow's joint case
//!   (its id derived from the flow and the window's case: the same on every node and resend).
//! - The window's later events: withdrawn withdraws the joint case and rejected rejects it; with
//!   "accept now, supply later" (容缺後補) a supplement requested after acceptance is a document
//!   accepted for later supply, due within the flow's `supply_later_working_days`, and the next
//!   acceptance means it came.
//! - A branch bureau's case event about a branch's item for the joint case's project moves the
//!   branch: its case is filed, its clock starts on the working day after acceptance, stops while
//!   a supplement is requested (when the flow says so) and stops for good at the decision.
//!   Events older than the last one applied of that case (by sequence) change nothing.
//! - The outcome: rejected when a required branch is rejected, withdrawn when a required branch
//!   is withdrawn, approved when every required branch is approved; optional branches never hold
//!   it up.
//! - Each change of a joint case is a new version, told to the window and every branch bureau.
//! - A day passing ([`tick`]): an unsupplied document past its deadline terminates the joint case;
//!   a running branch clock `warn_before` working days from its due date, and again once past it,
//!   sends the branch bureau a deadline notice (once each); so does the whole joint case's clock,
//!   to the window bureau about its application.
//! - Every other case (with `clocks.every_case`) runs on a clock of its own, of the time limit
//!   its events carry ([`apply_case_clock`], [`tick_case_clock`]), with the same rules and
//!   notices, unless it is a branch of a joint case: a joint case opening takes in the case clocks of its branches filed
//!   before it (the branch then counts from the case's own acceptance), and a case matched to a
//!   branch later stops keeping a clock of its own.

use chrono::NaiveDate;
use schemas::{
    BranchStatus, BureauCaseId, BureauId, CaseStatus, DeadlineNotice, DeadlineState, DueDate,
    Event, FlowName, JointBranch, JointCaseId, JointNotice, JointStatus, Name, ShanghaiDate,
};

use super::FlowTable;
use crate::clock::Millis;
use crate::config::Flow;
use crate::ids;
use crate::store::joint::{BranchClock, CaseClock, Clock, JointCase, Paused, SupplyLater};
use crate::workdays::{Calendar, Counted};

/// A joint case changed by a step, and what it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The joint case as it is to be stored (its revision already the next one).
    pub case: JointCase,
    /// Whether its notice changed (a new version for the window and the branches).
    pub joint_notice: bool,
    /// Deadline notices for branch bureaus (and the window, about the whole).
    pub deadlines: Vec<Deadline>,
    /// Case clocks a newly opened joint case took in for its branches.
    pub adopted: Vec<CaseClock>,
}

/// A deadline notice to a branch bureau about its case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// The bureau handling the case (the notice's source and receiver).
    pub bureau: BureauId,
    /// Its case.
    pub case_id: BureauCaseId,
    /// The notice's number among the case's deadline notices.
    pub sequence: u64,
    /// The notice.
    pub notice: DeadlineNotice,
}

/// The Shanghai day of an event.
pub fn day_of(event: &Event) -> NaiveDate {
    event.occurred_at.naive_local().date()
}

fn calendar_name(calendar: &Calendar) -> Name {
    let version = calendar.version();
    // A version is the notices' document numbers; it is cut to a name's length if need be.
    let cut: String = version.chars().take(Name::MAX_CHARS).collect();
    Name::parse(&cut).unwrap_or_else(|_| {
        Name::parse("calendar").unwrap_or_else(|_| unreachable!("a plain name parses"))
    })
}

/// The due date of a clock as of `today`: its limit counted from the working day after it
/// started, extended by the working days it was stopped (an open pause counts up to `today`).
pub fn due_of(clock: &Clock, calendar: &Calendar, today: NaiveDate) -> Option<Counted> {
    let started = clock.started_on?.get();
    let mut paused = 0u32;
    let mut provisional = false;
    for pause in &clock.pauses {
        let to = pause.to.map_or(today, ShanghaiDate::get);
        let (days, unsure) = calendar.working_days_between(pause.from.get(), to);
        paused += days;
        provisional |= unsure;
    }
    let mut due = calendar.add_working_days(started, u32::from(clock.limit) + paused);
    due.provisional |= provisional;
    Some(due)
}

fn due_date(counted: Counted) -> DueDate {
    DueDate {
        on: ShanghaiDate::new(counted.date),
        provisional: counted.provisional,
    }
}

/// Whether a clock is stopped for a supplement now.
pub fn is_paused(clock: &Clock) -> bool {
    clock.pauses.last().is_some_and(|p| p.to.is_none())
}

/// What one inbox event changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// Joint cases changed or opened.
    pub changes: Vec<Change>,
    /// Case clocks started, moved, or taken in by a joint case.
    pub clocks: Vec<CaseClock>,
}

/// What `event` does: to the joint cases of its project (`existing`, as stored: the changed and
/// the newly opened ones), to its own case's clock (`own`, as stored; a window's or branch's
/// case counts on its joint case's clock instead), and — when it opens a joint case — to the
/// case clocks of its project (`of_project`) the new case takes in.
pub fn apply_event(
    table: &FlowTable,
    event: &Event,
    existing: &[JointCase],
    own: Option<&CaseClock>,
    of_project: &[CaseClock],
    now: Millis,
) -> Step {
    let mut step = Step {
        changes: joint_changes(table, event, existing, of_project, now),
        clocks: Vec::new(),
    };
    step.clocks = step
        .changes
        .iter()
        .flat_map(|c| c.adopted.iter().cloned())
        .collect();
    // The joint case whose clock the event's case counts on: one this event changed (it may have
    // just closed it), or an open one; a case of a joint case closed before runs its own clock.
    let taken_in =
        step.changes
            .iter()
            .map(|c| &c.case)
            .chain(
                existing
                    .iter()
                    .filter(|c| c.notice.status == JointStatus::Open),
            )
            .find(|c| {
                (c.notice.window == event.source && c.notice.window_case_id == event.case_id)
                    || c.notice.branches.iter().any(|b| {
                        b.bureau == event.source && b.case_id.as_ref() == Some(&event.case_id)
                    })
            })
            .map(|c| c.id().clone());
    if let Some(clock) = apply_case_clock(table, event, own, taken_in, now) {
        step.clocks.push(clock);
    }
    step
}

fn joint_changes(
    table: &FlowTable,
    event: &Event,
    existing: &[JointCase],
    of_project: &[CaseClock],
    now: Millis,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let Some(case) = event.case() else {
        return changes;
    };
    let calendar = table.calendar();
    let today = day_of(event);
    // Case clocks already taken in by a joint case this step opened.
    let mut taken: Vec<(BureauId, BureauCaseId)> = Vec::new();
    for flow in table.opened_by(event) {
        let id = ids::joint_case_id(&flow.name, event.source.as_str(), event.case_id.as_str());
        if existing.iter().any(|c| c.id() == &id) {
            continue;
        }
        let Ok(flow_name) = FlowName::parse(&flow.name) else {
            continue; // validated at start
        };
        let clock = Clock {
            started_on: Some(ShanghaiDate::new(today)),
            limit: flow.time_limit_working_days,
            ..Clock::default()
        };
        let due = due_of(&clock, calendar, today).map_or(
            DueDate {
                on: ShanghaiDate::new(today),
                provisional: true,
            },
            due_date,
        );
        let notice = JointNotice {
            joint_case_id: id,
            flow: flow_name,
            version: 1,
            project: case.project.clone(),
            window: event.source,
            window_case_id: event.case_id.clone(),
            status: JointStatus::Open,
            opened_on: ShanghaiDate::new(today),
            due,
            calendar: calendar_name(calendar),
            branches: flow
                .branches
                .iter()
                .map(|b| JointBranch {
                    bureau: b.bureau,
                    item: b.item,
                    required: b.required,
                    status: BranchStatus::Waiting,
                    case_id: None,
                    due: None,
                })
                .collect(),
        };
        let mut opened = JointCase {
            notice,
            clocks: flow
                .branches
                .iter()
                .map(|b| BranchClock {
                    clock: Clock {
                        limit: b.time_limit_working_days,
                        ..Clock::default()
                    },
                    last_sequence: 0,
                })
                .collect(),
            clock,
            window_sequence: event.sequence,
            supply_later: None,
            closed_at: None,
            updated_at: now,
            revision: 1,
        };
        let adopted = adopt_branches(&mut opened, of_project, &mut taken, calendar, today, now);
        if opened.notice.status.is_final() {
            opened.closed_at = Some(now);
        }
        changes.push(Change {
            case: opened,
            joint_notice: true,
            deadlines: Vec::new(),
            adopted,
        });
    }
    for stored in existing {
        if stored.notice.status != JointStatus::Open {
            continue;
        }
        let Some(flow) = table.flow(stored.notice.flow.as_str()) else {
            continue; // a flow no longer configured keeps its cases as they stand
        };
        let mut next = stored.clone();
        let changed =
            if event.source == next.notice.window && event.case_id == next.notice.window_case_id {
                apply_window(flow, &mut next, event, case.status, calendar, today)
            } else {
                apply_branch(flow, &mut next, event, case.status, calendar, today)
            };
        if let Some(joint_notice) = changed {
            next.updated_at = now;
            next.revision += 1;
            if joint_notice {
                next.notice.version += 1;
            }
            if next.notice.status.is_final() && next.closed_at.is_none() {
                next.closed_at = Some(now);
            }
            changes.push(Change {
                case: next,
                joint_notice,
                deadlines: Vec::new(),
                adopted: Vec::new(),
            });
        }
    }
    changes
}

/// A new joint case takes in, for each branch, the latest case clock of the project of the
/// branch's bureau and item not taken in yet (a branch case filed before the window's): the
/// branch gets its case, status and clock (with the branch's own limit). Returns the clocks as
/// changed (taken in: they run no more on their own).
fn adopt_branches(
    case: &mut JointCase,
    of_project: &[CaseClock],
    taken: &mut Vec<(BureauId, BureauCaseId)>,
    calendar: &Calendar,
    today: NaiveDate,
    now: Millis,
) -> Vec<CaseClock> {
    let mut adopted = Vec::new();
    for (branch, clock) in case.notice.branches.iter_mut().zip(case.clocks.iter_mut()) {
        // Only an undecided case is taken in (an old decision is not this application's), the
        // latest accepted first.
        let candidate = of_project
            .iter()
            .filter(|c| {
                c.bureau == branch.bureau
                    && c.item == branch.item
                    && c.is_open()
                    && !taken.contains(&(c.bureau, c.case_id.clone()))
            })
            .max_by_key(|c| (c.clock.started_on, c.updated_at));
        let Some(found) = candidate else {
            continue;
        };
        taken.push((found.bureau, found.case_id.clone()));
        branch.case_id = Some(found.case_id.clone());
        branch.status = BranchStatus::from(found.status);
        clock.clock = Clock {
            limit: clock.clock.limit,
            ..found.clock.clone()
        };
        clock.last_sequence = found.last_sequence;
        branch.due = due_of(&clock.clock, calendar, today).map(due_date);
        let mut took = found.clone();
        took.joint_case_id = Some(case.notice.joint_case_id.clone());
        took.updated_at = now;
        took.revision += 1;
        adopted.push(took);
    }
    if !adopted.is_empty() {
        decide(case);
    }
    adopted
}

/// Moves a clock by its case entering `status` on `day`: started at the first acceptance, a
/// pause closed by the next, opened by a supplement request (when `pause_on_supplement`), and
/// stopped for good by the decision.
fn move_clock(clock: &mut Clock, status: CaseStatus, pause_on_supplement: bool, day: ShanghaiDate) {
    match status {
        CaseStatus::Accepted => {
            if clock.started_on.is_none() {
                clock.started_on = Some(day);
            }
            if let Some(pause) = clock.pauses.last_mut().filter(|p| p.to.is_none()) {
                pause.to = Some(day);
            }
        }
        CaseStatus::SupplementRequested => {
            if pause_on_supplement && !is_paused(clock) {
                clock.pauses.push(Paused {
                    from: day,
                    to: None,
                });
            }
        }
        CaseStatus::Approved | CaseStatus::Rejected | CaseStatus::Withdrawn => {
            if let Some(pause) = clock.pauses.last_mut().filter(|p| p.to.is_none()) {
                pause.to = Some(day);
            }
            clock.stopped_on = Some(day);
        }
        CaseStatus::Submitted => {}
    }
}

/// What a case event does to its case's own clock (`stored`), on the time limit the event
/// carries: `None` when nothing (`clocks.every_case` off, an older event, a clock already taken
/// in, or a case that is a branch of the joint case `taken_in` and never had a clock of its own).
pub fn apply_case_clock(
    table: &FlowTable,
    event: &Event,
    stored: Option<&CaseClock>,
    taken_in: Option<JointCaseId>,
    now: Millis,
) -> Option<CaseClock> {
    let case = event.case()?;
    if !table.clocks_every_case() {
        return None;
    }
    if stored.is_some_and(|s| s.joint_case_id.is_some()) {
        return None;
    }
    let mut clock = match (stored, taken_in) {
        (None, Some(_)) => return None,
        // Handed over whatever the event's sequence: the joint case counts from now on.
        (Some(stored), Some(joint)) => {
            let mut next = stored.clone();
            next.joint_case_id = Some(joint);
            if event.sequence > next.last_sequence {
                next.last_sequence = event.sequence;
                next.status = case.status;
            }
            next.updated_at = now;
            next.revision += 1;
            return Some(next);
        }
        (Some(stored), None) if event.sequence <= stored.last_sequence => return None,
        (Some(stored), None) => {
            let mut next = stored.clone();
            next.revision += 1;
            // A corrected project or item is the case's latest word.
            next.project = case.project.code.clone();
            next.item = case.item;
            next
        }
        (None, None) => CaseClock {
            bureau: event.source,
            case_id: event.case_id.clone(),
            item: case.item,
            project: case.project.code.clone(),
            status: case.status,
            clock: Clock::default(),
            last_sequence: 0,
            joint_case_id: None,
            updated_at: now,
            revision: 1,
        },
    };
    clock.status = case.status;
    clock.last_sequence = event.sequence;
    clock.updated_at = now;
    // The bureau's latest word on its limit (an extension, say) counts.
    clock.clock.limit = case.time_limit_working_days.get();
    move_clock(
        &mut clock.clock,
        case.status,
        table.pause_case_clocks_on_supplement(),
        ShanghaiDate::new(day_of(event)),
    );
    Some(clock)
}

/// A window event about the joint case's own application. `Some(told)` when the case changed,
/// `told` when the change is a new version of its notice.
fn apply_window(
    flow: &Flow,
    case: &mut JointCase,
    event: &Event,
    status: CaseStatus,
    calendar: &Calendar,
    today: NaiveDate,
) -> Option<bool> {
    if event.sequence <= case.window_sequence {
        return None;
    }
    case.window_sequence = event.sequence;
    match status {
        CaseStatus::Withdrawn => {
            case.notice.status = JointStatus::Withdrawn;
            Some(true)
        }
        CaseStatus::Rejected => {
            case.notice.status = JointStatus::Rejected;
            Some(true)
        }
        CaseStatus::SupplementRequested => match flow.supply_later_working_days {
            Some(days) if case.supply_later.is_none() => {
                // "Accept now, supply later" is not for an applicant on the blacklist or the
                // key-supervision list: no working day of grace, the documents are due today.
                let listed = event
                    .credit_warnings
                    .iter()
                    .any(|w| w.list.restricts_deferral());
                let days = if listed { 0 } else { days };
                let until = calendar.add_working_days(today, u32::from(days)).date;
                case.supply_later = Some(SupplyLater {
                    since: ShanghaiDate::new(today),
                    until: ShanghaiDate::new(until),
                });
                Some(false)
            }
            _ => Some(false),
        },
        CaseStatus::Accepted if case.supply_later.is_some() => {
            case.supply_later = None;
            Some(false)
        }
        _ => Some(false),
    }
}

/// A branch bureau's event: the branch of the same bureau and item, if the joint case has one.
fn apply_branch(
    flow: &Flow,
    case: &mut JointCase,
    event: &Event,
    status: CaseStatus,
    calendar: &Calendar,
    today: NaiveDate,
) -> Option<bool> {
    let item = event.case()?.item;
    if event.case()?.project.code != case.notice.project.code {
        return None;
    }
    let i = case
        .notice
        .branches
        .iter()
        .position(|b| b.bureau == event.source && b.item == item)?;
    let same_case = case.notice.branches[i].case_id.as_ref() == Some(&event.case_id);
    if same_case && event.sequence <= case.clocks[i].last_sequence {
        return None;
    }
    let branch = &mut case.notice.branches[i];
    let clock = &mut case.clocks[i];
    clock.last_sequence = event.sequence;
    let day = ShanghaiDate::new(today);
    branch.case_id = Some(event.case_id.clone());
    branch.status = BranchStatus::from(status);
    move_clock(&mut clock.clock, status, flow.pause_on_supplement, day);
    branch.due = due_of(&clock.clock, calendar, today).map(due_date);
    decide(case);
    // A newer event of the branch's case always tells something: its status, its case or its
    // due date.
    Some(true)
}

/// The joint outcome from the branches.
fn decide(case: &mut JointCase) {
    let required = case.notice.branches.iter().filter(|b| b.required);
    let mut all_approved = true;
    for branch in required {
        match branch.status {
            BranchStatus::Rejected => {
                case.notice.status = JointStatus::Rejected;
                return;
            }
            BranchStatus::Withdrawn => {
                case.notice.status = JointStatus::Withdrawn;
                return;
            }
            BranchStatus::Approved => {}
            _ => all_approved = false,
        }
    }
    if all_approved {
        case.notice.status = JointStatus::Approved;
    }
}

/// What the passing of days does to one open joint case on `today`: `None` when nothing.
pub fn tick(
    table: &FlowTable,
    stored: &JointCase,
    today: NaiveDate,
    now: Millis,
) -> Option<Change> {
    if stored.notice.status != JointStatus::Open {
        return None;
    }
    let calendar = table.calendar();
    let mut case = stored.clone();
    let mut joint_notice = false;
    if let Some(supply) = case.supply_later
        && supply.until.get() < today
    {
        case.notice.status = JointStatus::Terminated;
        case.supply_later = None;
        case.closed_at = Some(now);
        joint_notice = true;
    }
    let mut deadlines = Vec::new();
    if !joint_notice {
        let warn_before = table.warn_before();
        let about = Some(case.notice.joint_case_id.clone());
        for (branch, clock) in case.notice.branches.iter().zip(case.clocks.iter_mut()) {
            let Some(case_id) = &branch.case_id else {
                continue;
            };
            if let Some((sequence, notice)) = deadline_due(
                &mut clock.clock,
                (branch.item, &case.notice.project.code, about.clone()),
                calendar,
                today,
                warn_before,
            ) {
                deadlines.push(Deadline {
                    bureau: branch.bureau,
                    case_id: case_id.clone(),
                    sequence,
                    notice,
                });
            }
        }
        // The whole joint case: the window answers the applicant once, by its due date.
        if let Some(flow) = table.flow(case.notice.flow.as_str())
            && let Some((sequence, notice)) = deadline_due(
                &mut case.clock,
                (flow.item, &case.notice.project.code, about),
                calendar,
                today,
                warn_before,
            )
        {
            deadlines.push(Deadline {
                bureau: case.notice.window,
                case_id: case.notice.window_case_id.clone(),
                sequence,
                notice,
            });
        }
    }
    if !joint_notice && deadlines.is_empty() {
        return None;
    }
    case.updated_at = now;
    case.revision += 1;
    if joint_notice {
        case.notice.version += 1;
    }
    Some(Change {
        case,
        joint_notice,
        deadlines,
        adopted: Vec::new(),
    })
}

/// The deadline notice a running clock owes on `today`, if any — approaching once within
/// `warn_before` working days of its due date, passed once after it — with its number among the
/// clock's notices; the clock records it. `about` is the case's item, project and joint case.
fn deadline_due(
    clock: &mut Clock,
    about: (schemas::Item, &schemas::ProjectCode, Option<JointCaseId>),
    calendar: &Calendar,
    today: NaiveDate,
    warn_before: u16,
) -> Option<(u64, DeadlineNotice)> {
    if clock.stopped_on.is_some() || is_paused(clock) {
        return None;
    }
    let due = due_of(clock, calendar, today)?;
    let (state, days) = if today > due.date && !clock.passed {
        clock.passed = true;
        clock.warned = true;
        (
            DeadlineState::Passed,
            calendar.working_days_between(due.date, today).0,
        )
    } else if today <= due.date && !clock.warned {
        let (left, _) = calendar.working_days_between(today, due.date);
        if left > u32::from(warn_before) {
            return None;
        }
        clock.warned = true;
        (DeadlineState::Approaching, left)
    } else {
        return None;
    };
    clock.notices_sent += 1;
    let (item, project, joint_case_id) = about;
    Some((
        u64::from(clock.notices_sent),
        DeadlineNotice {
            item,
            project: project.clone(),
            state,
            working_days: u16::try_from(days.min(366)).unwrap_or(366),
            due: due_date(due),
            calendar: calendar_name(calendar),
            joint_case_id,
        },
    ))
}

/// What the passing of days does to an open case clock on `today`: the clock as it is to be
/// stored and the deadline notice it sends, or `None`.
pub fn tick_case_clock(
    table: &FlowTable,
    stored: &CaseClock,
    today: NaiveDate,
    now: Millis,
) -> Option<(CaseClock, Deadline)> {
    if !stored.is_open() {
        return None;
    }
    let mut next = stored.clone();
    let (sequence, notice) = deadline_due(
        &mut next.clock,
        (stored.item, &stored.project, None),
        table.calendar(),
        today,
        table.warn_before(),
    )?;
    next.updated_at = now;
    next.revision += 1;
    Some((
        next,
        Deadline {
            bureau: stored.bureau,
            case_id: stored.case_id.clone(),
            sequence,
            notice,
        },
    ))
}

/// A branch's clock as of `today`, for the operators: its due date and working days left
/// (negative: overdue).
pub fn standing(clock: &Clock, calendar: &Calendar, today: NaiveDate) -> Option<(Counted, i64)> {
    let due = due_of(clock, calendar, today)?;
    let end = clock.stopped_on.map_or(today, ShanghaiDate::get);
    let left = if end <= due.date {
        i64::from(calendar.working_days_between(end, due.date).0)
    } else {
        -i64::from(calendar.working_days_between(due.date, end).0)
    };
    Some((due, left))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use schemas::{Item, ShanghaiTime, Stage};

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn table() -> FlowTable {
        let config = Config::from_layers(&[], &[]).unwrap();
        FlowTable::new(&config, Calendar::builtin())
    }

    fn clock(started: &str, limit: u16, pauses: &[(&str, Option<&str>)]) -> Clock {
        Clock {
            started_on: Some(ShanghaiDate::new(d(started))),
            limit,
            pauses: pauses
                .iter()
                .map(|(from, to)| Paused {
                    from: ShanghaiDate::new(d(from)),
                    to: to.map(|t| ShanghaiDate::new(d(t))),
                })
                .collect(),
            ..Clock::default()
        }
    }

    /// A case event of `source` about `item`, `status`, on `day` (09:30), for the project
    /// 2601-310115-04-01-000123.
    pub(crate) fn case_event(
        source: BureauId,
        item: Item,
        status: CaseStatus,
        case_id: &str,
        sequence: u64,
        day: &str,
    ) -> Event {
        let mut event =
            adapters::sample::case_event(&mut fastrand::Rng::with_seed(sequence), source);
        let mut case = event.case().cloned().unwrap();
        case.item = item;
        case.time_limit_working_days =
            schemas::WorkingDays::new(adapters::sample::time_limit(item)).unwrap();
        case.stage = Stage::ConstructionPermit;
        case.status = status;
        case.project.code = schemas::ProjectCode::parse("2601-310115-04-01-000123").unwrap();
        case.submitted_at = ShanghaiTime::parse_rfc3339("2026-01-05T09:00:00+08:00").unwrap();
        event.case_id = BureauCaseId::parse(case_id).unwrap();
        event.sequence = sequence;
        event.occurred_at = ShanghaiTime::parse_rfc3339(&format!("{day}T09:30:00+08:00")).unwrap();
        event.kind = status.event_kind();
        event.payload = schemas::Payload::Case(case);
        event
    }

    #[test]
    fn clocks_count_working_days_on_the_official_calendar() {
        let calendar = Calendar::builtin();
        // (started, limit, pauses, due): Spring Festival 2026 is 15-23 February, with Saturday
        // 14 and Saturday 28 February worked; National Day 2026 is 1-7 October, Saturday 10
        // October worked; 2025's Spring Festival is 28 January - 4 February, Sunday 26 January
        // and Saturday 8 February worked.
        type Pauses<'a> = &'a [(&'a str, Option<&'a str>)];
        let cases: &[(&str, u16, Pauses<'_>, &str)] = &[
            ("2026-02-13", 1, &[], "2026-02-14"),
            ("2026-02-13", 2, &[], "2026-02-24"),
            ("2026-02-13", 5, &[], "2026-02-27"),
            ("2026-02-13", 6, &[], "2026-02-28"),
            ("2026-02-13", 7, &[], "2026-03-02"),
            // Stopped from 25 February to 2 March: 26, 27, 28 February and 2 March don't count.
            (
                "2026-02-13",
                5,
                &[("2026-02-25", Some("2026-03-02"))],
                "2026-03-04",
            ),
            ("2026-09-30", 1, &[], "2026-10-08"),
            ("2026-09-30", 3, &[], "2026-10-10"),
            ("2026-09-30", 4, &[], "2026-10-12"),
            ("2025-01-24", 1, &[], "2025-01-26"),
            ("2025-01-24", 3, &[], "2025-02-05"),
            ("2025-01-24", 6, &[], "2025-02-08"),
        ];
        for (started, limit, pauses, due) in cases {
            let got = due_of(&clock(started, *limit, pauses), &calendar, d("2026-12-01")).unwrap();
            assert_eq!(
                (got.date, got.provisional),
                (d(due), false),
                "{limit} working days from {started} with pauses {pauses:?}"
            );
        }
    }

    #[test]
    fn a_clock_past_the_last_notice_is_provisional_until_the_notice_is_loaded() {
        let started = clock("2026-12-28", 5, &[]);
        let shipped = due_of(&started, &Calendar::builtin(), d("2026-12-28")).unwrap();
        // Weekends alone off in 2027: 29, 30, 31 December, then 1 and 4 January.
        assert_eq!((shipped.date, shipped.provisional), (d("2027-01-04"), true));
        let mut text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/calendar/cn-workdays.toml"
        ))
        .unwrap();
        text.push_str(
            "\n[[notice]]\nyear = 2027\ndocument = \"国办发明电〔2026〕test号\"\nissued = \"2026-11-05\"\nrest = [\"2027-01-01..2027-01-03\"]\nwork = []\n",
        );
        let loaded = Calendar::parse(&text).unwrap();
        let recomputed = due_of(&started, &loaded, d("2026-12-28")).unwrap();
        assert_eq!(
            (recomputed.date, recomputed.provisional),
            (d("2027-01-05"), false)
        );
    }

    /// Applies events one by one, keeping the stored cases as the store would.
    fn run(events: &[Event]) -> (Vec<JointCase>, Vec<JointNotice>) {
        let table = table();
        let mut stored: Vec<JointCase> = Vec::new();
        let mut told = Vec::new();
        for event in events {
            for change in apply_event(&table, event, &stored, None, &[], 0).changes {
                if change.joint_notice {
                    told.push(change.case.notice.clone());
                }
                match stored.iter_mut().find(|c| c.id() == change.case.id()) {
                    Some(slot) => *slot = change.case,
                    None => stored.push(change.case),
                }
            }
        }
        (stored, told)
    }

    use BureauId::{CivilDefense, Greenery, Planning, TrafficPolice, Water};
    use CaseStatus::{Accepted, Approved, Rejected, SupplementRequested, Withdrawn};

    fn window(status: CaseStatus, seq: u64, day: &str) -> Event {
        case_event(
            Planning,
            Item::ConstructionPlanningPermit,
            status,
            "GH2026000123",
            seq,
            day,
        )
    }

    fn branch(bureau: BureauId, status: CaseStatus, seq: u64, day: &str) -> Event {
        let (item, id) = match bureau {
            CivilDefense => (Item::CivilDefenseDesignReview, "RF2026000457"),
            Water => (Item::WaterSupplyConnection, "SW2026001024"),
            TrafficPolice => (Item::RoadWorksTrafficSafety, "JJ2026000077"),
            _ => (Item::GreeningPlanReview, "LH2026000318"),
        };
        case_event(bureau, item, status, id, seq, day)
    }

    #[test]
    fn every_required_branch_approved_approves_the_joint_case_without_the_optional_ones() {
        let (stored, told) = run(&[
            window(Accepted, 2, "2026-02-13"),
            window(Accepted, 2, "2026-02-13"), // resent: changes nothing
            branch(CivilDefense, Accepted, 1, "2026-02-13"),
            branch(Water, Accepted, 1, "2026-02-24"),
            branch(TrafficPolice, Accepted, 1, "2026-02-24"),
            branch(CivilDefense, Approved, 2, "2026-02-26"),
            branch(CivilDefense, Accepted, 1, "2026-02-26"), // older: ignored
            branch(Water, Approved, 2, "2026-02-27"),
            branch(TrafficPolice, Approved, 2, "2026-02-25"),
        ]);
        assert_eq!(stored.len(), 1, "one joint case per application");
        let case = &stored[0];
        assert_eq!(case.notice.status, JointStatus::Approved);
        assert_eq!(case.notice.flow.as_str(), "one_stop_construction_permit");
        // Opened 13 February; 15 working days across the Spring Festival.
        assert_eq!(case.notice.due.on.get(), d("2026-03-12"));
        let greenery = case
            .notice
            .branches
            .iter()
            .find(|b| b.bureau == Greenery)
            .unwrap();
        assert_eq!(greenery.status, BranchStatus::Waiting);
        let civil = &case.notice.branches[0];
        assert_eq!(civil.due.unwrap().on.get(), d("2026-02-27"));
        let versions: Vec<u32> = told.iter().map(|n| n.version).collect();
        assert_eq!(versions, (1..=7).collect::<Vec<_>>());
        assert!(told.iter().all(|n| n.violations().is_empty()));
    }

    #[test]
    fn a_rejected_required_branch_rejects_the_joint_case_and_nothing_changes_after() {
        let (stored, told) = run(&[
            window(Accepted, 2, "2026-09-29"),
            branch(Water, Accepted, 1, "2026-09-30"),
            branch(Greenery, Rejected, 1, "2026-09-30"), // optional: the case stays open
            branch(CivilDefense, Rejected, 1, "2026-10-08"),
            branch(Water, Approved, 2, "2026-10-09"),
        ]);
        let case = &stored[0];
        assert_eq!(case.notice.status, JointStatus::Rejected);
        assert_eq!(told[2].status, JointStatus::Open);
        let last = told.last().unwrap();
        assert_eq!(last.status, JointStatus::Rejected);
        assert_eq!(told.len(), 4, "nothing is applied to a decided joint case");
        assert!(case.closed_at.is_some());
    }

    #[test]
    fn the_window_withdraws_and_a_supplement_stops_a_branch_clock() {
        let (stored, _) = run(&[
            window(Accepted, 2, "2026-02-13"),
            branch(CivilDefense, Accepted, 1, "2026-02-13"),
            branch(CivilDefense, SupplementRequested, 2, "2026-02-25"),
            branch(CivilDefense, Accepted, 3, "2026-03-02"),
        ]);
        let civil = &stored[0].notice.branches[0];
        assert_eq!(civil.due.unwrap().on.get(), d("2026-03-04"));
        assert_eq!(stored[0].clocks[0].clock.pauses.len(), 1);
        let (stored, told) = run(&[
            window(Accepted, 2, "2026-02-13"),
            window(Withdrawn, 3, "2026-02-24"),
        ]);
        assert_eq!(stored[0].notice.status, JointStatus::Withdrawn);
        assert_eq!(told.len(), 2);
    }

    #[test]
    fn a_document_not_supplied_in_time_terminates_the_joint_case() {
        let table = table();
        let (stored, _) = run(&[
            window(Accepted, 2, "2026-02-13"),
            window(SupplementRequested, 3, "2026-02-13"),
            branch(Water, Accepted, 1, "2026-02-24"),
        ]);
        let case = &stored[0];
        // Five working days from 13 February: 14, 24, 25, 26, 27 February.
        assert_eq!(case.supply_later.unwrap().until.get(), d("2026-02-27"));
        // On the last day it is not yet late (the water clock may warn, the case stays open).
        assert!(tick(&table, case, d("2026-02-27"), 0).is_none_or(|c| !c.joint_notice));
        let change = tick(&table, case, d("2026-03-02"), 0).unwrap();
        assert!(change.joint_notice);
        assert_eq!(change.case.notice.status, JointStatus::Terminated);
        // Supplied in time: the next acceptance clears it, and nothing is terminated.
        let (stored, _) = run(&[
            window(Accepted, 2, "2026-02-13"),
            window(SupplementRequested, 3, "2026-02-13"),
            window(Accepted, 4, "2026-02-26"),
        ]);
        assert!(stored[0].supply_later.is_none());
        assert!(tick(&table, &stored[0], d("2026-03-02"), 0).is_none_or(|c| !c.joint_notice));
    }

    #[test]
    fn a_listed_applicant_gets_no_supply_later_period() {
        let table = table();
        let mut requested = window(SupplementRequested, 3, "2026-02-13");
        requested.credit_warnings = vec![schemas::CreditWarning {
            list: schemas::CreditList::Dishonest,
            publisher: BureauId::Housing,
            entry_id: schemas::BureauCaseId::parse("FGJ-XY-1").unwrap(),
            version: 1,
        }];
        let (stored, _) = run(&[window(Accepted, 2, "2026-02-13"), requested.clone()]);
        // Due the same day: the next working day without the documents terminates the case.
        assert_eq!(stored[0].supply_later.unwrap().until.get(), d("2026-02-13"));
        let change = tick(&table, &stored[0], d("2026-02-14"), 0).unwrap();
        assert_eq!(change.case.notice.status, JointStatus::Terminated);
        // The red list restricts nothing: the flow's five working days.
        requested.credit_warnings[0].list = schemas::CreditList::Red;
        let (stored, _) = run(&[window(Accepted, 2, "2026-02-13"), requested]);
        assert_eq!(stored[0].supply_later.unwrap().until.get(), d("2026-02-27"));
    }

    #[test]
    fn deadline_notices_go_out_once_before_and_once_after_the_due_date() {
        let table = table(); // warns 1 working day before
        let (stored, _) = run(&[
            window(Accepted, 2, "2026-02-13"),
            branch(CivilDefense, Accepted, 1, "2026-02-13"),
        ]);
        let mut case = stored[0].clone();
        assert!(
            tick(&table, &case, d("2026-02-25"), 0).is_none(),
            "two days left"
        );
        let warned = tick(&table, &case, d("2026-02-26"), 0).unwrap();
        assert_eq!(warned.deadlines.len(), 1);
        let notice = &warned.deadlines[0];
        assert_eq!((notice.bureau, notice.sequence), (CivilDefense, 1));
        assert_eq!(notice.notice.state, DeadlineState::Approaching);
        assert_eq!(notice.notice.working_days, 1);
        assert_eq!(notice.notice.due.on.get(), d("2026-02-27"));
        case = warned.case;
        assert!(
            tick(&table, &case, d("2026-02-27"), 0).is_none(),
            "warned once"
        );
        let passed = tick(&table, &case, d("2026-03-03"), 0).unwrap();
        let notice = &passed.deadlines[0];
        assert_eq!(notice.notice.state, DeadlineState::Passed);
        // Overdue by 28 February (a Saturday worked), 2 and 3 March.
        assert_eq!((notice.sequence, notice.notice.working_days), (2, 3));
        assert!(
            tick(&table, &passed.case, d("2026-03-04"), 0).is_none(),
            "told once"
        );
    }

    #[test]
    fn the_window_is_warned_before_the_whole_joint_case_is_due_and_told_when_it_passes() {
        let table = table(); // warns 1 working day before
        let (stored, _) = run(&[window(Accepted, 2, "2026-02-13")]);
        // Fifteen working days from 13 February: due 12 March.
        assert_eq!(stored[0].notice.due.on.get(), d("2026-03-12"));
        assert!(tick(&table, &stored[0], d("2026-03-10"), 0).is_none());
        let warned = tick(&table, &stored[0], d("2026-03-11"), 0).unwrap();
        let notice = &warned.deadlines[0];
        assert_eq!(
            (notice.bureau, notice.case_id.as_str(), notice.sequence),
            (Planning, "GH2026000123", 1)
        );
        assert_eq!(notice.notice.item, Item::ConstructionPlanningPermit);
        assert_eq!(notice.notice.state, DeadlineState::Approaching);
        assert_eq!(notice.notice.joint_case_id.as_ref(), Some(stored[0].id()));
        let passed = tick(&table, &warned.case, d("2026-03-16"), 0).unwrap();
        assert_eq!(passed.deadlines[0].notice.state, DeadlineState::Passed);
        assert_eq!(passed.deadlines[0].notice.working_days, 2);
        assert!(!passed.joint_notice, "a late joint case stays open");
    }

    #[test]
    fn a_case_with_a_time_limit_runs_its_own_clock_unless_it_is_a_branch() {
        let table = table();
        let accepted = branch(TrafficPolice, Accepted, 1, "2026-02-13");
        let started = apply_case_clock(&table, &accepted, None, None, 5).unwrap();
        assert_eq!((started.revision, started.clock.limit), (1, 1));
        assert_eq!(
            started.clock.started_on.map(|d| d.get()),
            Some(d("2026-02-13"))
        );
        // Resent or older: nothing.
        assert!(apply_case_clock(&table, &accepted, Some(&started), None, 6).is_none());
        let asked = branch(TrafficPolice, SupplementRequested, 2, "2026-02-14");
        let paused = apply_case_clock(&table, &asked, Some(&started), None, 7).unwrap();
        assert!(is_paused(&paused.clock));
        assert!(
            tick_case_clock(&table, &paused, d("2026-03-02"), 8).is_none(),
            "stopped"
        );
        let back = branch(TrafficPolice, Accepted, 3, "2026-02-25");
        let running = apply_case_clock(&table, &back, Some(&paused), None, 9).unwrap();
        // One working day from 13 February (Saturday 14th, worked), plus the two working days
        // stopped after it (24th, 25th): due 25 February, overdue by the 26th and 27th.
        let (next, deadline) = tick_case_clock(&table, &running, d("2026-02-27"), 10).unwrap();
        assert_eq!(deadline.notice.due.on.get(), d("2026-02-25"));
        assert_eq!(deadline.notice.working_days, 2);
        assert_eq!(deadline.notice.state, DeadlineState::Passed);
        assert_eq!(next.revision, running.revision + 1);
        let decided = branch(TrafficPolice, Approved, 4, "2026-03-02");
        let stopped = apply_case_clock(&table, &decided, Some(&next), None, 11).unwrap();
        assert!(!stopped.is_open());
        // A case the joint case already counts as a branch keeps no clock of its own; one that
        // had a clock hands it over.
        let joint = stored_joint_id();
        assert!(apply_case_clock(&table, &accepted, None, Some(joint.clone()), 12).is_none());
        let handed =
            apply_case_clock(&table, &asked, Some(&started), Some(joint.clone()), 13).unwrap();
        assert_eq!(handed.joint_case_id, Some(joint));
        assert!(!handed.is_open());
        // Without `clocks.every_case`, no case keeps a clock of its own.
        let mut config = Config::from_layers(&[], &[]).unwrap();
        config.clocks.every_case = false;
        let off = FlowTable::new(&config, Calendar::builtin());
        assert!(apply_case_clock(&off, &accepted, None, None, 14).is_none());
    }

    fn stored_joint_id() -> JointCaseId {
        run(&[window(Accepted, 2, "2026-02-13")]).0[0].id().clone()
    }

    #[test]
    fn a_joint_case_takes_in_only_undecided_cases_and_a_closed_one_leaves_its_cases_their_own_clocks()
     {
        let table = table();
        // A water case decided long before the application: not taken in.
        let accepted = branch(Water, Accepted, 1, "2026-01-05");
        let started = apply_case_clock(&table, &accepted, None, None, 1).unwrap();
        let approved = branch(Water, Approved, 2, "2026-01-09");
        let decided = apply_case_clock(&table, &approved, Some(&started), None, 2).unwrap();
        let opened = apply_event(
            &table,
            &window(Accepted, 2, "2026-02-13"),
            &[],
            None,
            &[decided],
            3,
        );
        let case = &opened.changes[0].case;
        let w = case
            .notice
            .branches
            .iter()
            .position(|b| b.bureau == Water)
            .unwrap();
        assert_eq!(case.notice.branches[w].status, BranchStatus::Waiting);
        assert_eq!(case.notice.status, JointStatus::Open);
        assert!(opened.clocks.is_empty(), "nothing taken in");
        // An undecided one is.
        let opened = apply_event(
            &table,
            &window(Accepted, 2, "2026-02-13"),
            &[],
            None,
            std::slice::from_ref(&started),
            3,
        );
        assert_eq!(opened.clocks.len(), 1);
        assert_eq!(
            opened.changes[0].case.notice.branches[w].status,
            BranchStatus::Accepted
        );

        // Once the joint case is closed, a later case event of its branch runs its own clock.
        let (stored, _) = run(&[
            window(Accepted, 2, "2026-02-13"),
            branch(Water, Accepted, 1, "2026-02-24"),
            window(Withdrawn, 3, "2026-02-25"),
        ]);
        assert_eq!(stored[0].notice.status, JointStatus::Withdrawn);
        let later = branch(Water, SupplementRequested, 2, "2026-02-26");
        let step = apply_event(&table, &later, &stored, None, &[], 4);
        assert!(step.changes.is_empty());
        assert_eq!(step.clocks.len(), 1, "its own clock");
        assert_eq!(step.clocks[0].joint_case_id, None);

        // A case matched to an open joint case hands its clock over even for an older event.
        let mut newer = started.clone();
        newer.last_sequence = 5;
        let (open, _) = run(&[
            window(Accepted, 2, "2026-02-13"),
            branch(Water, Accepted, 1, "2026-02-24"),
        ]);
        let older = branch(Water, Accepted, 1, "2026-02-24");
        let step = apply_event(&table, &older, &open, Some(&newer), &[], 5);
        assert_eq!(step.clocks.len(), 1);
        assert_eq!(step.clocks[0].joint_case_id.as_ref(), Some(open[0].id()));
        assert_eq!(step.clocks[0].last_sequence, 5);
    }
}
