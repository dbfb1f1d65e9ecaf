//! Routing: which bureaus receive an event, decided by the declarative routes of the config.

use schemas::{BureauId, Event};

use crate::config::Route;
use crate::vocabulary::name;

/// The routes of a configuration, ready to match events.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// Whether one route matched an event, and why (not).
#[derive(Debug, Clone)]
pub struct RouteMatch<'a> {
    /// The route.
    pub route: &'a Route,
    /// `None` when it matched, else the first condition the event failed.
    pub failed: Option<String>,
}

fn matches<T: PartialEq + serde::Serialize>(list: &[T], value: &T) -> Result<(), String> {
    if list.is_empty() || list.contains(value) {
        Ok(())
    } else {
        let names: Vec<String> = list.iter().map(name).collect();
        Err(format!("{} is not in [{}]", name(value), names.join(", ")))
    }
}

impl RouteTable {
    /// Builds the table from the configured routes.
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// Every route, with whether the event matched it.
    pub fn explain(&self, event: &Event) -> Vec<RouteMatch<'_>> {
        let Some(case) = event.case() else {
            // Survey notices are routed by entitlement, not by routes.
            return self
                .routes
                .iter()
                .map(|route| RouteMatch {
                    route,
                    failed: Some("not a case event".into()),
                })
                .collect();
        };
        self.routes
            .iter()
            .map(|route| {
                let failed = matches(&route.from, &event.source)
                    .map_err(|e| format!("source {e}"))
                    .and_then(|()| {
                        matches(&route.kinds, &event.kind).map_err(|e| format!("kind {e}"))
                    })
                    .and_then(|()| {
                        matches(&route.items, &case.item).map_err(|e| format!("item {e}"))
                    })
                    .and_then(|()| {
                        matches(&route.stages, &case.stage).map_err(|e| format!("stage {e}"))
                    })
                    .and_then(|()| {
                        matches(&route.districts, &case.district)
                            .map_err(|e| format!("district {e}"))
                    })
                    .err();
                RouteMatch { route, failed }
            })
            .collect()
    }

    /// The bureaus that receive the event: the union of the matching routes' receivers, in
    /// `BureauId` order, never the source itself.
    pub fn subscribers(&self, event: &Event) -> Vec<BureauId> {
        let mut out: Vec<BureauId> = self
            .explain(event)
            .into_iter()
            .filter(|m| m.failed.is_none())
            .flat_map(|m| m.route.to.iter().copied())
            .filter(|&b| b != event.source)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// [`RouteTable::subscribers`], each with the names of the routes that chose it
    /// (comma-separated): what the audit trail records of a routing decision.
    pub fn routed(&self, event: &Event) -> Vec<(BureauId, String)> {
        let matched: Vec<&Route> = self
            .explain(event)
            .into_iter()
            .filter(|m| m.failed.is_none())
            .map(|m| m.route)
            .collect();
        self.subscribers(event)
            .into_iter()
            .map(|bureau| {
                let names: Vec<&str> = matched
                    .iter()
                    .filter(|r| r.to.contains(&bureau))
                    .map(|r| r.name.as_str())
                    .collect();
                (bureau, names.join(","))
            })
            .collect()
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use schemas::{CaseStatus, Item, Payload};

    fn event(source: BureauId, item: Item, status: CaseStatus) -> Event {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut event = adapters::sample::case_event(&mut rng, source);
        let Payload::Case(case) = &mut event.payload else {
            unreachable!("a case event")
        };
        case.item = item;
        case.status = status;
        event.kind = status.event_kind();
        event
    }

    #[test]
    fn granted_planning_permit_reaches_the_five_other_bureaus() {
        let table = RouteTable::new(Config::defaults().unwrap().routes);
        let e = event(
            BureauId::Planning,
            Item::ConstructionPlanningPermit,
            CaseStatus::Approved,
        );
        assert_eq!(
            table.subscribers(&e),
            vec![
                BureauId::Water,
                BureauId::Transport,
                BureauId::TrafficPolice,
                BureauId::CivilDefense,
                BureauId::Greenery
            ]
        );
        let e = event(
            BureauId::Planning,
            Item::ConstructionPlanningPermit,
            CaseStatus::Submitted,
        );
        assert!(table.subscribers(&e).is_empty());
        let explained = table.explain(&e);
        assert!(explained[0].failed.as_deref().unwrap().starts_with("kind"));
    }
}
