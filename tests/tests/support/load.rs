//! Load with an account of every receipt: senders that send cases event by event (each
//! accepted before the next, sent again with the same idempotency key after a connection error
//! or a 503, to whichever node is up), and the check of what the receivers got against what was
//! accepted (nothing lost, nothing stray, per-case order, at-least-once).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use gateway::config::StoreLocation;
use gateway::store::any::AnyStore;
use schemas::{BureauId, CaseStatus, Event, Item, Stage};

use super::{
    BureauClient, Receiver, ReplyExt, TestPki, WAIT, as_delivered, case_event, next_in_case,
    subscribers, totals, wait_until_for,
};

/// How long the end of a test may wait for every delivery: the nodes share two cores with the
/// other tests of this binary (one of which loads a million rows).
pub(crate) const DELIVER_ALL: Duration = Duration::from_secs(240);

/// whose events the default routes send to push bureaus only (not to civil defense, which
/// pulls and has nobody pulling here). With the stage set to `EngineeringConstructionPermit`
/// no one-stop route adds planning.
pub(crate) const CASE_KINDS: [(BureauId, Item, CaseStatus); 3] = [
    // → water, transport, greenery
    (
        BureauId::Planning,
        Item::LandUsePlanningPermit,
        CaseStatus::Approved,
    ),
    // → transport, greenery
    (
        BureauId::Water,
        Item::WaterSupplyConnection,
        CaseStatus::Approved,
    ),
    // → traffic police
    (
        BureauId::Transport,
        Item::RoadExcavationPermit,
        CaseStatus::Accepted,
    ),
];

/// The first event of a new case of kind `kind` (an index into [`CASE_KINDS`]).
pub(crate) fn new_case(rng: &mut fastrand::Rng, kind: usize) -> Event {
    let (source, item, status) = CASE_KINDS[kind % CASE_KINDS.len()];
    let mut event = case_event(rng, source, item, status);
    let schemas::Payload::Case(case) = &mut event.payload else {
        unreachable!("a case event")
    };
    case.stage = Stage::EngineeringConstructionPermit;
    event
}

/// One message a sender got a 202 for.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    /// The gateway's id of its event.
    pub(crate) id: String,
    /// The event as sent (with the sender's own message id).
    pub(crate) event: Event,
    /// The bureaus the receipt promised.
    pub(crate) to: BTreeSet<BureauId>,
}

/// `(source, case id)`: names a case.
pub(crate) fn case_key(event: &Event) -> (BureauId, String) {
    (event.source, event.case_id.as_str().to_owned())
}

/// Checks what the receivers got against what was accepted: every receiver got exactly the
/// promised ids (nothing lost, nothing stray), and per case the sequences arrived in order —
/// non-decreasing, the first copies being 1, 2, … n without a gap — with any further copy a
/// redelivery of an id already received with that sequence (at-least-once, never a second
/// message for one sequence). The first copy of every id is the event as sent, with the
/// gateway's id. Returns how many redeliveries there were.
pub(crate) fn check_deliveries(receivers: &[Receiver], accepted: &[Accepted]) -> usize {
    let by_id: HashMap<&str, &Accepted> = accepted.iter().map(|a| (a.id.as_str(), a)).collect();
    assert_eq!(by_id.len(), accepted.len(), "every receipt has its own id");
    let mut redeliveries = 0;
    for receiver in receivers {
        let bureau = receiver.bureau();
        let promised: Vec<&Accepted> = accepted.iter().filter(|a| a.to.contains(&bureau)).collect();
        let received = receiver.received();
        let ids: HashSet<&str> = received
            .iter()
            .map(|r| r.event.message_id.as_str())
            .collect();
        let expected: HashSet<&str> = promised.iter().map(|a| a.id.as_str()).collect();
        let missing: Vec<&&str> = expected.difference(&ids).collect();
        let stray: Vec<&&str> = ids.difference(&expected).collect();
        assert!(
            missing.is_empty() && stray.is_empty(),
            "{bureau}: {} ids missing {missing:?}, {} stray {stray:?}",
            missing.len(),
            stray.len()
        );
        assert_eq!(ids.len(), promised.len(), "{bureau}: unique count");
        redeliveries += received.len() - ids.len();

        let mut per_case: BTreeMap<(BureauId, String), Vec<(u64, &str)>> = BTreeMap::new();
        for r in &received {
            let id = r.event.message_id.as_str();
            assert_eq!(r.header_id, id, "{bureau}: message-id header");
            per_case
                .entry(case_key(&r.event))
                .or_default()
                .push((r.event.sequence, id));
        }
        let mut promised_per_case: BTreeMap<(BureauId, String), usize> = BTreeMap::new();
        for a in &promised {
            *promised_per_case.entry(case_key(&a.event)).or_default() += 1;
        }
        for (case, arrivals) in &per_case {
            let sequences: Vec<u64> = arrivals.iter().map(|(s, _)| *s).collect();
            assert!(
                sequences.is_sorted(),
                "{bureau}, case {case:?}: out of order: {sequences:?}"
            );
            let mut seen: HashMap<u64, &str> = HashMap::new();
            let mut firsts = Vec::new();
            for (sequence, id) in arrivals {
                match seen.get(sequence) {
                    None => {
                        seen.insert(*sequence, id);
                        firsts.push(*sequence);
                        let sent = by_id[id];
                        let got = received
                            .iter()
                            .find(|r| r.event.message_id.as_str() == *id)
                            .expect("just seen");
                        assert_eq!(
                            got.event,
                            as_delivered(&sent.event, id),
                            "{bureau}: what it decoded of {id}"
                        );
                    }
                    Some(first) => assert_eq!(
                        first, id,
                        "{bureau}, case {case:?}: sequence {sequence} came as two messages"
                    ),
                }
            }
            let n = promised_per_case.get(case).copied().unwrap_or(0) as u64;
            assert_eq!(
                firsts,
                (1..=n).collect::<Vec<_>>(),
                "{bureau}, case {case:?}: first copies by sequence (all arrivals {sequences:?})"
            );
        }
        assert_eq!(
            per_case.len(),
            promised_per_case.len(),
            "{bureau}: every case it was promised"
        );
    }
    redeliveries
}

/// Waits until every receiver has every id promised to it.
pub(crate) async fn wait_all_delivered(receivers: &[Receiver], accepted: &[Accepted]) {
    wait_until_for(
        "every accepted message reached every promised subscriber",
        DELIVER_ALL,
        async || {
            receivers.iter().all(|r| {
                let ids = r.ids();
                accepted
                    .iter()
                    .filter(|a| a.to.contains(&r.bureau()))
                    .all(|a| ids.contains(&a.id))
            })
        },
    )
    .await;
}

/// What the senders of the two-node test share with its driver.
#[derive(Default)]
pub(crate) struct Load {
    /// The nodes senders use, as a load balancer knows them.
    pub(crate) nodes: Mutex<Vec<SocketAddr>>,
    /// Senders finish their round and stop.
    pub(crate) stop: AtomicBool,
    /// Messages accepted so far.
    pub(crate) accepted: AtomicUsize,
    /// Sends that failed with a connection error (and were sent again elsewhere).
    pub(crate) connection_errors: AtomicUsize,
    /// Messages accepted by another node after a send failed with a connection error.
    pub(crate) retried_elsewhere: AtomicUsize,
    /// Re-sends answered with the first receipt (`idempotent-replayed`).
    pub(crate) replayed: AtomicUsize,
    /// Sends answered 503 (store unavailable), and sent again.
    pub(crate) unavailable: AtomicUsize,
    /// Every message accepted so far, as the senders' results will list it.
    pub(crate) log: Mutex<Vec<Accepted>>,
}

impl Load {
    pub(crate) fn nodes(&self) -> Vec<SocketAddr> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_nodes(&self, nodes: Vec<SocketAddr>) {
        *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = nodes;
    }

    /// Every message accepted so far.
    pub(crate) fn accepted_so_far(&self) -> Vec<Accepted> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Sends `event` with `key` until some node accepts it: after a connection error to a node,
/// the same message with the same key goes to another node (it may or may not have been
/// committed by the first).
pub(crate) async fn send_until_accepted(
    load: &Load,
    pki: &TestPki,
    clients: &mut HashMap<SocketAddr, BureauClient>,
    rng: &mut fastrand::Rng,
    event: &Event,
    key: &str,
) -> gateway::store::Receipt {
    let encoded = adapters::for_bureau(event.source)
        .expect("every bureau has an adapter")
        .encode(event)
        .expect("the source can encode its event");
    let headers = [
        ("content-type", encoded.content_type.as_str()),
        ("idempotency-key", key),
    ];
    let started = Instant::now();
    let mut failed_on: Option<SocketAddr> = None;
    loop {
        assert!(
            started.elapsed() < WAIT,
            "no node accepted {key} within {} s",
            WAIT.as_secs()
        );
        let nodes = load.nodes();
        let choices: Vec<SocketAddr> = nodes
            .iter()
            .copied()
            .filter(|n| Some(*n) != failed_on)
            .collect();
        let choices = if choices.is_empty() { nodes } else { choices };
        let addr = choices[rng.usize(..choices.len())];
        let client = clients
            .entry(addr)
            .or_insert_with(|| BureauClient::new(pki, addr, event.source));
        match client
            .try_request("POST", "/v1/messages", &headers, encoded.body.clone())
            .await
        {
            Ok(reply) if reply.status == StatusCode::ACCEPTED => {
                if reply.header("idempotent-replayed") == Some("true") {
                    load.replayed.fetch_add(1, Ordering::Relaxed);
                }
                if failed_on.is_some() {
                    load.retried_elsewhere.fetch_add(1, Ordering::Relaxed);
                }
                return reply.receipt();
            }
            Ok(reply) if reply.status == StatusCode::SERVICE_UNAVAILABLE => {
                load.unavailable.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(reply) => panic!(
                "{addr} answered {} to {key}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ),
            Err(_) => {
                load.connection_errors.fetch_add(1, Ordering::Relaxed);
                failed_on = Some(addr);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One sender: two cases of one kind, their events in sequence 1, 2, … (each accepted before
/// the next is sent), to whichever node, until told to stop.
pub(crate) async fn send_cases(
    pki: Arc<TestPki>,
    load: Arc<Load>,
    sender: usize,
    run: u32,
) -> Vec<Accepted> {
    send_cases_paced(pki, load, sender, run, 150..=250).await
}

/// [`send_cases`], pausing a random `pause_ms` between rounds.
pub(crate) async fn send_cases_paced(
    pki: Arc<TestPki>,
    load: Arc<Load>,
    sender: usize,
    run: u32,
    pause_ms: RangeInclusive<u64>,
) -> Vec<Accepted> {
    let mut rng = fastrand::Rng::with_seed(1_000 + sender as u64);
    let cases: Vec<Event> = (0..2).map(|_| new_case(&mut rng, sender)).collect();
    let mut clients = HashMap::new();
    let mut accepted = Vec::new();
    let mut sequence = 0;
    while !load.stop.load(Ordering::Relaxed) {
        sequence += 1;
        for (n, case) in cases.iter().enumerate() {
            let event = next_in_case(case, sequence, &mut rng);
            let to = subscribers(&event);
            assert!(
                !to.is_empty() && !to.contains(&BureauId::CivilDefense),
                "{to:?}"
            );
            let key = format!("{run:08x}-{sender}-{n}-{sequence}");
            let receipt =
                send_until_accepted(&load, &pki, &mut clients, &mut rng, &event, &key).await;
            assert_eq!(receipt.message_ids.len(), 1);
            assert_eq!(receipt.deliveries, to.len(), "{key}");
            let message = Accepted {
                id: receipt.message_ids[0].as_str().to_owned(),
                event,
                to,
            };
            load.log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(message.clone());
            load.accepted.fetch_add(1, Ordering::Relaxed);
            accepted.push(message);
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(pause_ms.clone()))).await;
    }
    accepted
}

/// Configuration for a load whose account must hold exactly: the generated cases are dated in
/// the past, and their own working-day clocks would send deadline notices — deliveries no
/// receipt promised, which [`account`] cannot tell from the load's.
pub(crate) const WITHOUT_CASE_CLOCKS: &str = "[clocks]\nevery_case = false\n";

/// The end of a test: everything accepted reached every promised subscriber, the store holds
/// exactly the promised deliveries, delivered, and the receivers' account checks out. Returns
/// the number of redeliveries.
pub(crate) async fn account(store: &str, receivers: &[Receiver], sent: &[Accepted]) -> usize {
    wait_all_delivered(receivers, sent).await;
    let location = StoreLocation::parse(store).expect("a store location");
    let store = AnyStore::open(&location, 2).await.expect("the store");
    wait_until_for("the store has nothing pending", DELIVER_ALL, async || {
        totals(&store).await.0 == 0
    })
    .await;
    let (pending, delivered, dead, _) = totals(&store).await;
    assert_eq!((pending, dead), (0, 0));
    let promised: usize = sent.iter().map(|a| a.to.len()).sum();
    assert_eq!(
        delivered as usize, promised,
        "the store holds exactly the deliveries the receipts promised"
    );
    check_deliveries(receivers, sent)
}
