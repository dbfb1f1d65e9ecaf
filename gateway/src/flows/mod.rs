//! One-stop parallel approval (一口受理、並聯審批): the flows of the configuration, the joint
//! cases they open and the working-day clocks of their branches.
//!
//! - [`FlowTable`]: the configured flows, compiled: which committed events the flows look at
//!   ([`FlowTable::wants`], decided at ingest, so the store keeps those events in the flows'
//!   inbox in the same transaction) and `gateway flows explain`.
//! - `rules`: what an event or the passing of a day does to a joint case — pure, with the
//!   calendar and the day passed in.
//! - `bulletin`: the monthly bulletin (月度通報) per bureau and per flow, frozen once the month
//!   is over.
//! - `overdue`: the overdue list each clock tick makes (for the API, `ctl` and the dashboard).
//! - `engine`: the task every node runs: it takes events out of the store's inbox (a batch at a
//!   time), applies them and commits each batch of steps whole (the joint cases over the revision they were read at,
//!   the notices as one message through the normal routing and retry machinery); it looks at
//!   the open clocks every `clocks.check_interval_seconds` and sends the deadline notices.
//!
//! *Invariant:* every change of a joint case is committed together with the notices that tell
//! it, and only over the revision it was computed from, so two nodes never both apply one event
//! and a resend changes nothing (the notices' ids and keys are derived from what they tell).

pub mod bulletin;
pub mod engine;
pub mod overdue;
pub mod rules;
pub mod view;

use std::sync::Arc;

use schemas::{BureauId, CaseStatus, Event, Item};

use crate::config::{Config, CreditConfig, Flow};
use crate::workdays::Calendar;

/// The configured flows, with the calendar their clocks count on.
#[derive(Debug, Clone)]
pub struct FlowTable {
    flows: Arc<Vec<Flow>>,
    every_case: bool,
    pause_on_supplement: bool,
    /// What the last clock tick of this node found overdue (shared by its clones).
    overdue: Arc<std::sync::RwLock<overdue::OverdueList>>,
    calendar: Arc<Calendar>,
    warn_before: u16,
    /// Who receives each credit list's match notices.
    credit: Arc<CreditConfig>,
}

impl FlowTable {
    /// The flows of `config`, counting on `calendar`.
    pub fn new(config: &Config, calendar: Calendar) -> Self {
        Self {
            flows: Arc::new(config.flows.clone()),
            every_case: config.clocks.every_case,
            pause_on_supplement: config.clocks.pause_on_supplement,
            overdue: Arc::default(),
            calendar: Arc::new(calendar),
            warn_before: config.clocks.warn_working_days_before,
            credit: Arc::new(config.credit.clone()),
        }
    }

    /// The credit lists' configuration (whom the engine's match notices go to).
    pub fn credit(&self) -> &CreditConfig {
        &self.credit
    }

    /// Every flow.
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// The flow named `name`.
    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.name == name)
    }

    /// Whether every case not in a joint case runs on a clock of its own.
    pub fn clocks_every_case(&self) -> bool {
        self.every_case
    }

    /// Whether a case's own clock stops while a supplement is requested.
    pub fn pause_case_clocks_on_supplement(&self) -> bool {
        self.pause_on_supplement
    }

    /// The overdue cases of the last clock tick.
    pub fn overdue(&self) -> overdue::OverdueList {
        self.overdue.read().map_or_else(
            |poisoned| poisoned.into_inner().clone(),
            |list| list.clone(),
        )
    }

    /// Replaces the overdue list (the engine, after each tick).
    pub(crate) fn set_overdue(&self, list: overdue::OverdueList) {
        match self.overdue.write() {
            Ok(mut slot) => *slot = list,
            Err(poisoned) => *poisoned.into_inner() = list,
        }
    }

    /// The calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// How many working days before a due date the handling bureau is warned.
    pub fn warn_before(&self) -> u16 {
        self.warn_before
    }

    /// From 1 November of the calendar's last year, while next year's State Council notice is
    /// missing (due dates into next year are then counted on weekends alone and provisional):
    /// what to tell the operator. Also sets `gateway_calendar_next_year_missing`; the engine
    /// calls it at every clock tick, so the gauge is current whether or not anyone asks.
    pub fn calendar_warning(&self) -> Option<String> {
        let today = crate::clock::shanghai_now()?.naive_local().date();
        let missing = self.calendar.next_year_due(today);
        metrics::gauge!(crate::metrics::CALENDAR_NEXT_YEAR_MISSING)
            .set(f64::from(u8::from(missing)));
        missing.then(|| {
            format!(
                "the working-day calendar ends with {}: load the State Council notice for {} (calendar.file); due dates past it are provisional",
                self.calendar.last_year(),
                self.calendar.last_year() + 1
            )
        })
    }

    /// Whether the flows must look at `event`: a case event of a flow's window item (it may
    /// open a joint case, or withdraw one) or of one of its branches' items; with
    /// `clocks.every_case`, every case event (its case's clock).
    pub fn wants(&self, event: &Event) -> bool {
        let Some(case) = event.case() else {
            return false;
        };
        self.every_case
            || self.flows.iter().any(|flow| {
                (event.source == flow.window && case.item == flow.item)
                    || flow
                        .branches
                        .iter()
                        .any(|b| b.bureau == event.source && b.item == case.item)
            })
    }

    /// The flows `event` opens a joint case of.
    pub fn opened_by<'f>(&'f self, event: &'f Event) -> impl Iterator<Item = &'f Flow> + 'f {
        let case = event.case();
        self.flows.iter().filter(move |flow| {
            case.is_some_and(|case| {
                event.source == flow.window
                    && event.kind == flow.kind
                    && case.item == flow.item
                    && flow.stage.is_none_or(|stage| stage == case.stage)
            })
        })
    }

    /// Says, in words, what the flows and the time limits would do with a case event of
    /// `source` about `item` entering `status` (for `gateway routes explain`).
    pub fn explain(&self, source: BureauId, item: Item, status: CaseStatus) -> Vec<String> {
        let kind = status.event_kind();
        let mut lines = Vec::new();
        if self.every_case {
            lines.push(format!(
                "moves the case's own clock, on the limit the event carries, unless the case is the window or a branch of an open joint case{}",
                match status {
                    CaseStatus::Accepted => ": it starts on the next working day",
                    CaseStatus::SupplementRequested if self.pause_on_supplement =>
                        ": it stops until the supplement comes",
                    CaseStatus::Approved | CaseStatus::Rejected | CaseStatus::Withdrawn =>
                        ": it stops for good",
                    _ => "",
                }
            ));
        }
        for flow in self.flows.iter() {
            if source == flow.window && item == flow.item {
                if kind == flow.kind {
                    lines.push(format!(
                        "opens a joint case of flow {} (limit {} working days): {}",
                        flow.name, flow.time_limit_working_days, flow.reason
                    ));
                } else if status == CaseStatus::Withdrawn {
                    lines.push(format!("withdraws its joint case of flow {}", flow.name));
                } else if status == CaseStatus::Rejected {
                    lines.push(format!("rejects its joint case of flow {}", flow.name));
                } else if status == CaseStatus::SupplementRequested
                    && flow.supply_later_working_days.is_some()
                {
                    lines.push(format!(
                        "accepts a document for later supply in flow {} (terminated unless supplied within {} working days)",
                        flow.name,
                        flow.supply_later_working_days.unwrap_or_default()
                    ));
                }
            }
            for branch in &flow.branches {
                if branch.bureau == source && branch.item == item {
                    let role = if branch.required {
                        "required"
                    } else {
                        "optional"
                    };
                    lines.push(format!(
                        "updates the {role} branch {} of flow {} (limit {} working days){}",
                        item.code(),
                        flow.name,
                        branch.time_limit_working_days,
                        match status {
                            CaseStatus::Accepted => ": its clock starts on the next working day",
                            CaseStatus::SupplementRequested if flow.pause_on_supplement =>
                                ": its clock stops until the supplement comes",
                            CaseStatus::Rejected if branch.required =>
                                ": the joint case is rejected and every branch told",
                            _ => "",
                        }
                    ));
                }
            }
        }
        if lines.is_empty() {
            lines.push("no flow or clock acts on it".to_owned());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_says_what_the_flows_do_with_an_event() {
        let config = Config::from_layers(&[], &[]).unwrap();
        let table = FlowTable::new(&config, Calendar::builtin());
        let opens = table.explain(
            BureauId::Planning,
            Item::ConstructionPlanningPermit,
            CaseStatus::Accepted,
        );
        assert!(
            opens[0].starts_with("moves the case's own clock")
                && opens[0].ends_with("next working day"),
            "{opens:?}"
        );
        assert!(
            opens[1].starts_with("opens a joint case of flow one_stop_construction_permit"),
            "{opens:?}"
        );
        let rejects = table.explain(
            BureauId::CivilDefense,
            Item::CivilDefenseDesignReview,
            CaseStatus::Rejected,
        );
        assert_eq!(
            rejects[1..],
            [
                "updates the required branch civil_defense_design_review of flow one_stop_construction_permit (limit 5 working days): the joint case is rejected and every branch told"
            ]
        );
        let own = table.explain(BureauId::Greenery, Item::TreeFelling, CaseStatus::Approved);
        assert_eq!(
            own,
            [
                "moves the case's own clock, on the limit the event carries, unless the case is the window or a branch of an open joint case: it stops for good"
            ]
        );
        let mut config = Config::from_layers(&[], &[]).unwrap();
        config.clocks.every_case = false;
        let without = FlowTable::new(&config, Calendar::builtin());
        let nothing = without.explain(BureauId::Greenery, Item::TreeFelling, CaseStatus::Approved);
        assert_eq!(nothing, ["no flow or clock acts on it"]);
    }
}
