//! End-to-end tests of multi-survey-in-one (多測合一): planning publishes a survey result once
//! (multipart: metadata, then files), every entitled bureau is notified in its own format with
//! only the figures it may see, reads the result and (if entitled) downloads its files by
//! content hash; nobody else gets anything. Real mutual TLS, real HTTP, a SQLite file and a
//! blob folder per test; the large-file test runs the gateway in a child process and measures
//! its peak memory.
//!
//! Nothing here asserts that something happened within some time: conditions are polled with
//! `support::wait_until`, which fails only after a generous timeout.

mod support;

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::StatusCode;
use futures_util::StreamExt;
use gateway::config::Config;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use schemas::{
    BureauId, Event, EventKind, FigureName, FileRef, Sha256Hex, SurveyFigure, SurveyId, SurveyKind,
    SurveyNotice, SurveyResult, model::Name,
};
use sha2::{Digest, Sha256};
use support::{
    Behaviour, BureauClient, ChildGateway, Receiver, Reply, ReplyExt, TestPki, push_receivers,
    receiver, start_gateway, wait_until,
};

/// Not a test: the gateway process of `large_files_stream_with_bounded_memory`, started by it
/// with the config file in `GATEWAY_E2E_CHILD_CONFIG` and the address in `GATEWAY_LISTEN`.
#[test]
#[ignore = "the child process of large_files_stream_with_bounded_memory"]
fn child_gateway_process() {
    support::run_child_gateway();
}

/// The default entitlements (the test configuration does not change them).
fn defaults() -> Config {
    Config::defaults().expect("defaults")
}

/// The bureaus (other than the publisher) notified of results of `kind`.
fn entitled_to(kind: SurveyKind) -> BTreeSet<BureauId> {
    let config = defaults();
    BureauId::ALL
        .into_iter()
        .filter(|b| *b != config.surveys.publisher)
        .filter(|b| {
            config
                .surveys
                .entitlement_of(*b)
                .is_some_and(|e| e.kinds.contains(&kind))
        })
        .collect()
}

/// A realistic result of `kind`, version 1, with the given figures (native texts) and files.
fn result_of(
    rng: &mut fastrand::Rng,
    kind: SurveyKind,
    figures: &[(FigureName, &str)],
    files: &[Upload],
) -> SurveyResult {
    let mut result = adapters::sample::survey_notice(rng).result;
    result.kind = kind;
    result.version = 1;
    result.figures = figures
        .iter()
        .map(|(name, text)| SurveyFigure {
            name: *name,
            quantity: name
                .parse_value(text)
                .unwrap_or_else(|p| panic!("{text} is a valid {name:?}: {p}")),
        })
        .collect();
    result.files = files.iter().map(Upload::file_ref).collect();
    result
}

/// The metadata part as planning sends it: the figures in their native texts.
fn metadata(result: &SurveyResult, figures: &[(FigureName, &str)]) -> serde_json::Value {
    let mut metadata = gateway::sim::survey_metadata(result);
    metadata["figures"] = figures
        .iter()
        .map(|(name, text)| serde_json::json!({"name": figure_name(*name), "value": text}))
        .collect();
    metadata
}

fn figure_name(name: FigureName) -> String {
    serde_json::to_value(name)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("a figure name serializes as a string")
}

/// A file to upload.
#[derive(Clone)]
struct Upload {
    name: &'static str,
    media_type: &'static str,
    content: Vec<u8>,
}

impl Upload {
    /// A file of `size` pseudo-random bytes after a recognizable header.
    fn new(
        rng: &mut fastrand::Rng,
        name: &'static str,
        media_type: &'static str,
        size: usize,
    ) -> Self {
        let mut content = format!("{name} {media_type}\n").into_bytes();
        content.resize(size, 0);
        let header = content.len().min(64);
        rng.fill(&mut content[header..]);
        Self {
            name,
            media_type,
            content,
        }
    }

    fn sha256(&self) -> String {
        format!("{:x}", Sha256::digest(&self.content))
    }

    fn file_ref(&self) -> FileRef {
        FileRef {
            name: Name::parse(self.name).expect("a valid file name"),
            media_type: self.media_type.to_owned(),
            sha256: Sha256Hex::parse(&self.sha256()).expect("a digest"),
            size_bytes: self.content.len() as u64,
        }
    }
}

/// POSTs a publication (multipart: metadata, then the files).
async fn publish(client: &BureauClient, metadata: &serde_json::Value, files: &[Upload]) -> Reply {
    let files: Vec<gateway::sim::UploadFile> = files
        .iter()
        .map(|f| {
            (
                f.name.to_owned(),
                f.media_type.to_owned(),
                f.content.clone(),
            )
        })
        .collect();
    let (content_type, body) = gateway::sim::survey_upload(metadata, &files);
    client.post_body("/v1/surveys", &content_type, body).await
}

/// The 201 answer of a publication.
#[derive(Debug)]
struct Published {
    survey_id: SurveyId,
    version: u64,
    supersedes: Option<SurveyId>,
    notified: BTreeSet<BureauId>,
    message_ids: Vec<String>,
    deliveries: u64,
}

fn published(reply: &Reply) -> Published {
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "publication: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    let notified: Vec<BureauId> =
        serde_json::from_value(json["notified"].clone()).expect("notified: bureaus");
    let unique: BTreeSet<BureauId> = notified.iter().copied().collect();
    assert_eq!(unique.len(), notified.len(), "each bureau notified once");
    Published {
        survey_id: SurveyId::parse(json["survey_id"].as_str().expect("survey_id"))
            .expect("a survey id"),
        version: json["version"].as_u64().expect("version"),
        supersedes: json["supersedes"]
            .as_str()
            .map(|s| SurveyId::parse(s).expect("a survey id")),
        notified: unique,
        message_ids: serde_json::from_value(json["message_ids"].clone()).expect("message_ids"),
        deliveries: json["deliveries"].as_u64().expect("deliveries"),
    }
}

/// What `bureau` may see of `result` (its figures; the files only if it may download them),
/// from the default entitlements.
fn notice_for(
    bureau: BureauId,
    id: &SurveyId,
    supersedes: Option<&SurveyId>,
    result: &SurveyResult,
) -> SurveyNotice {
    let entitlement = defaults()
        .surveys
        .entitlement_of(bureau)
        .unwrap_or_else(|| panic!("{bureau} has an entitlement"));
    assert!(entitlement.kinds.contains(&result.kind));
    let mut result = result.clone();
    result
        .figures
        .retain(|f| entitlement.figures.contains(&f.name));
    if !entitlement.files.contains(&result.kind) {
        result.files.clear();
    }
    SurveyNotice {
        survey_id: id.clone(),
        supersedes: supersedes.cloned(),
        result,
    }
}

/// The survey events a push receiver decoded, in arrival order (with the `message-id` header).
fn survey_events(r: &Receiver) -> Vec<(String, Event)> {
    r.received()
        .into_iter()
        .filter(|g| g.event.survey().is_some())
        .map(|g| (g.header_id, g.event))
        .collect()
}

/// The events in civil defense's feed (not acknowledged: the feed returns them again).
async fn civil_defense_feed(civil: &BureauClient) -> Vec<Event> {
    let reply = civil.get("/v1/feed?wait=5").await;
    if reply.status == StatusCode::NO_CONTENT {
        return Vec::new();
    }
    assert_eq!(reply.status, StatusCode::OK);
    adapters::for_bureau(BureauId::CivilDefense)
        .expect("adapter")
        .decode(&reply.body, reply.header("content-type").unwrap_or(""))
        .expect("the feed is a civil-defense batch")
}

fn notice_of(reply: &Reply) -> SurveyNotice {
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    serde_json::from_slice(&reply.body).expect("a survey notice")
}

fn assert_problem(reply: &Reply, status: StatusCode, kind: &str) {
    assert_eq!(
        reply.status,
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["type"], kind);
}

/// Every regular file under `dir` (recursively); none when it does not exist.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Every figure, in native texts (the greening ratio as `35.5%`).
const ALL_FIGURES: [(FigureName, &str); 8] = [
    (FigureName::LandArea, "12345.67m2"),
    (FigureName::FloorAreaAboveGround, "45210.5m2"),
    (FigureName::FloorAreaBelowGround, "12800m2"),
    (FigureName::BuildingHeight, "99.6m"),
    (FigureName::GreeningArea, "4320.25m2"),
    (FigureName::GreeningRatio, "35.5%"),
    (FigureName::CivilDefenseArea, "3100m2"),
    (FigureName::PropertyUnits, "480"),
];

/// A planning-verification result reaches every bureau entitled to the kind, each in its own
/// format with exactly its figures; reads and downloads follow the entitlements and are recorded.
#[tokio::test(flavor = "multi_thread")]
async fn publish_notifies_every_entitled_bureau_in_its_own_format() {
    let pki = TestPki::new("survey-publish");
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let all: Vec<&Receiver> = receivers.iter().collect();
    let running = start_gateway(&pki, &all, "").await;
    let planning = BureauClient::new(&pki, running.addr(), BureauId::Planning);
    let mut rng = fastrand::Rng::with_seed(101);

    let files = [
        Upload::new(
            &mut rng,
            "竣工規劃核實測量成果報告.pdf",
            "application/pdf",
            300_000,
        ),
        Upload::new(&mut rng, "總平面圖.dwg", "image/vnd.dwg", 150_000),
    ];
    let result = result_of(
        &mut rng,
        SurveyKind::PlanningVerification,
        &ALL_FIGURES,
        &files,
    );
    let reply = publish(&planning, &metadata(&result, &ALL_FIGURES), &files).await;
    let p = published(&reply);
    let entitled = entitled_to(SurveyKind::PlanningVerification);
    assert_eq!(
        entitled,
        BTreeSet::from([
            BureauId::Water,
            BureauId::Transport,
            BureauId::TrafficPolice,
            BureauId::CivilDefense,
            BureauId::Greenery,
            BureauId::Housing
        ]),
        "the default entitlements to planning verification"
    );
    assert_eq!(p.notified, entitled);
    assert_eq!((p.version, p.supersedes.as_ref()), (1, None));
    assert_eq!(
        p.deliveries,
        entitled.len() as u64,
        "one delivery per bureau"
    );
    assert_eq!(p.message_ids.len(), entitled.len(), "one notice per bureau");
    let ids: HashSet<&String> = p.message_ids.iter().collect();
    assert_eq!(ids.len(), p.message_ids.len(), "distinct notice ids");

    // Push bureaus: one notice each, decoded from their own format, with their figures only.
    let mut seen_ids = HashSet::new();
    for bureau in entitled.iter().filter(|b| **b != BureauId::CivilDefense) {
        let r = receiver(&receivers, *bureau);
        wait_until(
            &format!("{bureau} receives the survey notice"),
            async || !survey_events(r).is_empty(),
        )
        .await;
        let got = survey_events(r);
        assert_eq!(got.len(), 1, "{bureau}: one notice");
        let (header_id, event) = &got[0];
        assert_eq!(header_id, event.message_id.as_str(), "{bureau}: message-id");
        assert!(
            p.message_ids.contains(header_id),
            "{bureau}: a notice id of the answer"
        );
        assert!(seen_ids.insert(header_id.clone()), "{bureau}: its own id");
        assert_eq!(event.kind, EventKind::SurveyPublished);
        assert_eq!(event.source, BureauId::Planning);
        assert_eq!(event.sequence, 1);
        let expected = notice_for(*bureau, &p.survey_id, None, &result);
        assert_eq!(
            event.survey(),
            Some(&expected),
            "{bureau}: the notice in its own format"
        );
    }
    // What each one saw differs as the entitlements do.
    let figures_of = |b: BureauId| -> Vec<FigureName> {
        survey_events(receiver(&receivers, b))[0]
            .1
            .survey()
            .map(|n| n.result.figures.iter().map(|f| f.name).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        figures_of(BureauId::Greenery),
        [
            FigureName::LandArea,
            FigureName::GreeningArea,
            FigureName::GreeningRatio
        ]
    );
    assert_eq!(
        figures_of(BureauId::TrafficPolice),
        [FigureName::LandArea, FigureName::BuildingHeight]
    );
    assert_eq!(
        figures_of(BureauId::Housing),
        [
            FigureName::LandArea,
            FigureName::FloorAreaAboveGround,
            FigureName::FloorAreaBelowGround,
            FigureName::PropertyUnits
        ],
        "housing registers the floor areas and the property units"
    );
    let greening_ratio = survey_events(receiver(&receivers, BureauId::Greenery))[0]
        .1
        .survey()
        .and_then(|n| {
            n.result
                .figures
                .iter()
                .find(|f| f.name == FigureName::GreeningRatio)
                .map(|f| FigureName::value_text(&f.quantity))
        });
    assert_eq!(greening_ratio.as_deref(), Some("35.5"));
    assert!(
        receiver(&receivers, BureauId::Planning)
            .received()
            .is_empty(),
        "the publisher is not notified of its own publication"
    );

    // Civil defense pulls its notice from the feed.
    let civil = BureauClient::new(&pki, running.addr(), BureauId::CivilDefense);
    let feed = civil_defense_feed(&civil).await;
    let surveys: Vec<&Event> = feed.iter().filter(|e| e.survey().is_some()).collect();
    assert_eq!(surveys.len(), 1, "civil defense's feed: {feed:?}");
    assert!(
        p.message_ids
            .contains(&surveys[0].message_id.as_str().to_owned())
    );
    assert!(seen_ids.insert(surveys[0].message_id.as_str().to_owned()));
    assert_eq!(surveys[0].kind, EventKind::SurveyPublished);
    assert_eq!(
        surveys[0].survey(),
        Some(&notice_for(
            BureauId::CivilDefense,
            &p.survey_id,
            None,
            &result
        ))
    );

    // Reads: each bureau its own figures; downloads only where the files are entitled.
    let id = p.survey_id.as_str();
    for bureau in &entitled {
        let client = BureauClient::new(&pki, running.addr(), *bureau);
        let notice = notice_of(&client.get(&format!("/v1/surveys/{id}")).await);
        assert_eq!(
            notice,
            notice_for(*bureau, &p.survey_id, None, &result),
            "{bureau} reads its view"
        );
        let may_download = defaults()
            .surveys
            .entitlement_of(*bureau)
            .is_some_and(|e| e.files.contains(&SurveyKind::PlanningVerification));
        assert_eq!(may_download, *bureau == BureauId::Water);
        for file in &files {
            let reply = client
                .get(&format!("/v1/surveys/{id}/files/{}", file.sha256()))
                .await;
            if may_download {
                assert_eq!(reply.status, StatusCode::OK, "{bureau} downloads");
                assert_eq!(reply.body.as_ref(), file.content.as_slice(), "exact bytes");
                assert_eq!(reply.header("content-type"), Some(file.media_type));
                assert_eq!(
                    reply.header("content-length"),
                    Some(file.content.len().to_string().as_str())
                );
            } else {
                assert_problem(
                    &reply,
                    StatusCode::FORBIDDEN,
                    "urn:exchange:problem:forbidden",
                );
            }
        }
    }
    let water = BureauClient::new(&pki, running.addr(), BureauId::Water);
    assert_problem(
        &water
            .get(&format!("/v1/surveys/{id}/files/{}", "0".repeat(64)))
            .await,
        StatusCode::NOT_FOUND,
        "urn:exchange:problem:not-found",
    );

    // Who read it: every entitled bureau (operators and the publisher may ask, others not).
    let operator = BureauClient::operator(&pki, running.addr());
    let reads = operator.get(&format!("/v1/surveys/{id}/reads")).await;
    assert_eq!(reads.status, StatusCode::OK);
    let expected: Vec<BureauId> = entitled.iter().copied().collect();
    assert_eq!(
        reads.json()["bureaus"],
        serde_json::to_value(&expected).expect("json")
    );
    assert_eq!(
        planning
            .get(&format!("/v1/surveys/{id}/reads"))
            .await
            .json()["bureaus"],
        serde_json::to_value(&expected).expect("json")
    );
    assert_problem(
        &water.get(&format!("/v1/surveys/{id}/reads")).await,
        StatusCode::FORBIDDEN,
        "urn:exchange:problem:forbidden",
    );
    running.shutdown().await;
}

/// Invalid figures and agency codes are rejected with the path of each value; nothing is
/// stored or published.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_figures_are_rejected_with_paths() {
    let pki = TestPki::new("survey-invalid");
    let greenery = Receiver::start(&pki, BureauId::Greenery, Behaviour::Healthy).await;
    let running = start_gateway(&pki, &[&greenery], "").await;
    let planning = BureauClient::new(&pki, running.addr(), BureauId::Planning);
    let mut rng = fastrand::Rng::with_seed(202);

    let files = [Upload::new(
        &mut rng,
        "綠地測量成果.pdf",
        "application/pdf",
        50_000,
    )];
    let valid_figures = [
        (FigureName::LandArea, "8000m2"),
        (FigureName::GreeningArea, "2400m2"),
        (FigureName::GreeningRatio, "30%"),
    ];
    let result = result_of(&mut rng, SurveyKind::Greening, &valid_figures, &files);
    let mut bad = metadata(
        &result,
        &[
            (FigureName::LandArea, "8000m2"),
            (FigureName::GreeningArea, "2400m2"),
            (FigureName::GreeningRatio, "11,6%"),
        ],
    );
    // Same code, another check character.
    let code = result.agency.credit_code.as_str().to_owned();
    let last = code.chars().last().expect("a credit code");
    let wrong = if last == '0' { '1' } else { '0' };
    bad["agency"]["credit_code"] = format!("{}{wrong}", &code[..code.len() - 1]).into();

    let reply = publish(&planning, &bad, &files).await;
    assert_problem(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "urn:exchange:problem:invalid-message",
    );
    let problem = reply.json();
    assert_eq!(problem["status"], 422);
    let errors = problem["errors"].as_array().expect("errors[]");
    let paths: BTreeSet<&str> = errors.iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(
        paths,
        BTreeSet::from(["/figures/2/value", "/agency/credit_code"]),
        "{problem}"
    );
    assert_eq!(errors.len(), 2, "{problem}");
    let ratio = errors
        .iter()
        .find(|e| e["path"] == "/figures/2/value")
        .expect("the ratio's error");
    assert_eq!(ratio["text"], "11,6%");
    let credit = errors
        .iter()
        .find(|e| e["path"] == "/agency/credit_code")
        .expect("the credit code's error");
    assert_eq!(credit["problem"]["type"], "bad_check_character");
    assert!(
        files_under(&pki.blob_dir()).is_empty(),
        "no file stored for a rejected publication"
    );

    // Nothing was published: the valid one is version 1 and the first notice greenery gets.
    let reply = publish(&planning, &metadata(&result, &valid_figures), &files).await;
    let p = published(&reply);
    assert_eq!((p.version, p.supersedes.as_ref()), (1, None));
    assert_eq!(p.notified, BTreeSet::from([BureauId::Greenery]));
    wait_until("greenery receives the valid result", async || {
        !survey_events(&greenery).is_empty()
    })
    .await;
    let got = survey_events(&greenery);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1.survey(),
        Some(&notice_for(BureauId::Greenery, &p.survey_id, None, &result))
    );
    running.shutdown().await;
}

/// A real-estate result reaches the housing administration alone: one notice, in its SOAP
/// format, with the floor areas and property units; 403 to every other bureau's reads; housing
/// reads it and downloads its file; and only planning may publish at all.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_estate_result_reaches_housing_alone_and_403_to_the_rest() {
    let pki = TestPki::new("survey-unentitled");
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let all: Vec<&Receiver> = receivers.iter().collect();
    let running = start_gateway(&pki, &all, "").await;
    let planning = BureauClient::new(&pki, running.addr(), BureauId::Planning);
    let water = BureauClient::new(&pki, running.addr(), BureauId::Water);
    let civil = BureauClient::new(&pki, running.addr(), BureauId::CivilDefense);
    let mut rng = fastrand::Rng::with_seed(303);

    let housing_only = BTreeSet::from([BureauId::Housing]);
    assert_eq!(entitled_to(SurveyKind::RealEstate), housing_only);
    let re_figures = [
        (FigureName::FloorAreaAboveGround, "45210.5m2"),
        (FigureName::PropertyUnits, "480"),
    ];
    let re_files = [Upload::new(
        &mut rng,
        "房產測繪成果.pdf",
        "application/pdf",
        80_000,
    )];
    let real_estate = result_of(&mut rng, SurveyKind::RealEstate, &re_figures, &re_files);
    let re = published(&publish(&planning, &metadata(&real_estate, &re_figures), &re_files).await);
    assert_eq!(re.notified, housing_only, "{re:?}");
    assert_eq!(re.deliveries, 1);
    assert_eq!(re.message_ids.len(), 1);

    // A later result every other bureau is entitled to: once it has arrived everywhere, the
    // real-estate result has demonstrably reached housing alone.
    let pv_figures = [(FigureName::LandArea, "12345.67m2")];
    let pv = result_of(&mut rng, SurveyKind::PlanningVerification, &pv_figures, &[]);
    let later = published(&publish(&planning, &metadata(&pv, &pv_figures), &[]).await);
    assert_eq!(
        later.notified,
        entitled_to(SurveyKind::PlanningVerification)
    );
    for bureau in later
        .notified
        .iter()
        .filter(|b| **b != BureauId::CivilDefense)
    {
        let r = receiver(&receivers, *bureau);
        wait_until(&format!("{bureau} receives the later notice"), async || {
            r.received().iter().any(|g| {
                g.event
                    .survey()
                    .is_some_and(|n| n.survey_id == later.survey_id)
            })
        })
        .await;
    }
    let mut feed = Vec::new();
    wait_until("civil defense's feed has the later notice", async || {
        feed = civil_defense_feed(&civil).await;
        !feed.is_empty()
    })
    .await;
    let mut everything: Vec<(BureauId, Event)> = feed
        .into_iter()
        .map(|e| (BureauId::CivilDefense, e))
        .collect();
    for r in &receivers {
        everything.extend(r.received().into_iter().map(|g| (r.bureau(), g.event)));
    }
    assert_eq!(everything.len(), later.notified.len() + 1, "{everything:?}");
    for (bureau, event) in &everything {
        let notice = event.survey().expect("a survey notice");
        if *bureau == BureauId::Housing && notice.survey_id == re.survey_id {
            let figures: Vec<FigureName> = notice.result.figures.iter().map(|f| f.name).collect();
            assert_eq!(
                figures,
                [FigureName::FloorAreaAboveGround, FigureName::PropertyUnits]
            );
            continue;
        }
        assert_eq!(
            notice.survey_id, later.survey_id,
            "{bureau} got only the later result"
        );
    }

    // Reading it is refused to every other bureau; planning (the publisher) sees it all.
    let id = re.survey_id.as_str();
    assert_problem(
        &water.get(&format!("/v1/surveys/{id}")).await,
        StatusCode::FORBIDDEN,
        "urn:exchange:problem:forbidden",
    );
    assert_problem(
        &water
            .get(&format!("/v1/surveys/{id}/files/{}", re_files[0].sha256()))
            .await,
        StatusCode::FORBIDDEN,
        "urn:exchange:problem:forbidden",
    );
    for bureau in [BureauId::CivilDefense, BureauId::Greenery] {
        let client = BureauClient::new(&pki, running.addr(), bureau);
        assert_eq!(
            client.get(&format!("/v1/surveys/{id}")).await.status,
            StatusCode::FORBIDDEN,
            "{bureau}"
        );
    }
    let own = notice_of(&planning.get(&format!("/v1/surveys/{id}")).await);
    assert_eq!(own.result, real_estate);
    let housing = BureauClient::new(&pki, running.addr(), BureauId::Housing);
    assert_eq!(
        housing.get(&format!("/v1/surveys/{id}")).await.status,
        StatusCode::OK
    );
    let file = housing
        .get(&format!("/v1/surveys/{id}/files/{}", re_files[0].sha256()))
        .await;
    assert_eq!(
        file.status,
        StatusCode::OK,
        "housing may download the drawings"
    );
    assert_eq!(file.body.len(), 80_000);

    // Only planning publishes.
    let mut water_result = real_estate.clone();
    water_result.kind = SurveyKind::PlanningVerification;
    assert_problem(
        &publish(&water, &metadata(&water_result, &re_figures), &re_files).await,
        StatusCode::FORBIDDEN,
        "urn:exchange:problem:forbidden",
    );
    let operator = BureauClient::operator(&pki, running.addr());
    let reads = operator.get(&format!("/v1/surveys/{id}/reads")).await;
    assert_eq!(
        reads.json()["bureaus"],
        serde_json::json!(["planning", "housing"]),
        "refused reads are not reads; housing's are"
    );
    // A survey notice is published through /v1/surveys only: sent as a message, it is refused.
    let notice = adapters::sample::survey_event(&mut rng);
    let encoded = adapters::for_bureau(BureauId::Planning)
        .expect("planning adapter")
        .encode(&notice)
        .expect("encodes");
    assert_problem(
        &planning
            .post_body("/v1/messages", &encoded.content_type, encoded.body)
            .await,
        StatusCode::BAD_REQUEST,
        "urn:exchange:problem:bad-request",
    );
    running.shutdown().await;
}

/// A correction is version 2: it supersedes version 1, reaches the same bureaus as
/// survey.superseded, both versions stay readable, and a file they share is stored once.
#[tokio::test(flavor = "multi_thread")]
async fn a_superseding_version_notifies_the_same_bureaus_and_files_are_stored_once() {
    let pki = TestPki::new("survey-supersede");
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let all: Vec<&Receiver> = receivers.iter().collect();
    let running = start_gateway(&pki, &all, "").await;
    let planning = BureauClient::new(&pki, running.addr(), BureauId::Planning);
    let mut rng = fastrand::Rng::with_seed(404);

    let a = Upload::new(&mut rng, "綠地測量成果.pdf", "application/pdf", 200_000);
    let b = Upload::new(&mut rng, "綠地範圍.gml", "application/gml+xml", 70_000);
    let v1_figures = [
        (FigureName::LandArea, "8000m2"),
        (FigureName::GreeningArea, "2400m2"),
        (FigureName::GreeningRatio, "30%"),
    ];
    let v1 = result_of(
        &mut rng,
        SurveyKind::Greening,
        &v1_figures,
        std::slice::from_ref(&a),
    );
    let first = published(
        &publish(
            &planning,
            &metadata(&v1, &v1_figures),
            std::slice::from_ref(&a),
        )
        .await,
    );
    assert_eq!((first.version, first.supersedes.as_ref()), (1, None));
    let entitled = entitled_to(SurveyKind::Greening);
    assert_eq!(first.notified, entitled);
    assert!(!entitled.is_empty());

    let v2_figures = [
        (FigureName::LandArea, "8000m2"),
        (FigureName::GreeningArea, "2520.5m2"),
        (FigureName::GreeningRatio, "31.5%"),
    ];
    let mut v2 = result_of(
        &mut rng,
        SurveyKind::Greening,
        &v2_figures,
        &[a.clone(), b.clone()],
    );
    v2.project = v1.project.clone();
    v2.agency = v1.agency.clone();
    v2.surveyed_on = v1.surveyed_on;
    let second = published(
        &publish(
            &planning,
            &metadata(&v2, &v2_figures),
            &[a.clone(), b.clone()],
        )
        .await,
    );
    v2.version = 2;
    assert_eq!(second.version, 2);
    assert_eq!(second.supersedes.as_ref(), Some(&first.survey_id));
    assert_ne!(second.survey_id, first.survey_id);
    assert_eq!(second.notified, first.notified, "the same bureaus");
    // A re-send of the same publication (its answer was lost) is not a third version.
    let again = publish(
        &planning,
        &metadata(&v2, &v2_figures),
        &[a.clone(), b.clone()],
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        again.json()["survey_id"].as_str(),
        Some(second.survey_id.as_str()),
        "the replay names the version published"
    );

    for bureau in &entitled {
        let r = receiver(&receivers, *bureau);
        wait_until(&format!("{bureau} receives both versions"), async || {
            survey_events(r).len() >= 2
        })
        .await;
        let got = survey_events(r);
        assert_eq!(got.len(), 2, "{bureau}");
        let (old, new) = (&got[0].1, &got[1].1);
        assert_eq!(old.kind, EventKind::SurveyPublished);
        assert_eq!(
            old.survey(),
            Some(&notice_for(*bureau, &first.survey_id, None, &v1))
        );
        assert_eq!(new.kind, EventKind::SurveySuperseded);
        assert_eq!(new.sequence, 2);
        assert_eq!(new.case_id, old.case_id, "one series");
        assert_eq!(
            new.survey(),
            Some(&notice_for(
                *bureau,
                &second.survey_id,
                Some(&first.survey_id),
                &v2
            ))
        );
        let client = BureauClient::new(&pki, running.addr(), *bureau);
        let read_v1 = notice_of(
            &client
                .get(&format!("/v1/surveys/{}", first.survey_id.as_str()))
                .await,
        );
        assert_eq!(read_v1, notice_for(*bureau, &first.survey_id, None, &v1));
        let read_v2 = notice_of(
            &client
                .get(&format!("/v1/surveys/{}", second.survey_id.as_str()))
                .await,
        );
        assert_eq!(
            read_v2,
            notice_for(*bureau, &second.survey_id, Some(&first.survey_id), &v2)
        );
        for (id, file) in [
            (&first.survey_id, &a),
            (&second.survey_id, &a),
            (&second.survey_id, &b),
        ] {
            let reply = client
                .get(&format!(
                    "/v1/surveys/{}/files/{}",
                    id.as_str(),
                    file.sha256()
                ))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{bureau}");
            assert_eq!(reply.body.as_ref(), file.content.as_slice());
        }
        // B is not a file of version 1.
        assert_eq!(
            client
                .get(&format!(
                    "/v1/surveys/{}/files/{}",
                    first.survey_id.as_str(),
                    b.sha256()
                ))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }

    let mut stored: Vec<String> = files_under(&pki.blob_dir())
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    stored.sort();
    let mut expected: Vec<String> = [&a, &b]
        .iter()
        .map(|f| {
            let sha = f.sha256();
            pki.blob_dir()
                .join(&sha[..2])
                .join(&sha)
                .display()
                .to_string()
        })
        .collect();
    expected.sort();
    assert_eq!(stored, expected, "A stored once, B once, nothing else");
    running.shutdown().await;
}

/// A blob altered on disk is refused with an integrity problem, and served again once restored.
#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_blob_is_never_served() {
    let pki = TestPki::new("survey-tamper");
    let greenery = Receiver::start(&pki, BureauId::Greenery, Behaviour::Healthy).await;
    let running = start_gateway(&pki, &[&greenery], "").await;
    let planning = BureauClient::new(&pki, running.addr(), BureauId::Planning);
    let reader = BureauClient::new(&pki, running.addr(), BureauId::Greenery);
    let mut rng = fastrand::Rng::with_seed(505);

    let file = Upload::new(&mut rng, "綠地測量成果.pdf", "application/pdf", 120_000);
    let figures = [(FigureName::GreeningRatio, "35.5%")];
    let result = result_of(
        &mut rng,
        SurveyKind::Greening,
        &figures,
        std::slice::from_ref(&file),
    );
    let p = published(
        &publish(
            &planning,
            &metadata(&result, &figures),
            std::slice::from_ref(&file),
        )
        .await,
    );
    let sha = file.sha256();
    let path = format!("/v1/surveys/{}/files/{sha}", p.survey_id.as_str());
    let reply = reader.get(&path).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.as_ref(), file.content.as_slice());

    let blob = pki.blob_dir().join(&sha[..2]).join(&sha);
    assert_eq!(
        std::fs::read(&blob).expect("the blob is where its digest says"),
        file.content
    );
    let mut altered = file.content.clone();
    altered[70_000] ^= 0x01;
    std::fs::write(&blob, &altered).expect("alter the blob");
    for client in [&reader, &planning] {
        let reply = client.get(&path).await;
        assert_problem(
            &reply,
            StatusCode::INTERNAL_SERVER_ERROR,
            "urn:exchange:problem:integrity",
        );
        assert_ne!(reply.body.as_ref(), altered.as_slice());
    }
    // Truncated is altered too.
    std::fs::write(&blob, &file.content[..1000]).expect("truncate the blob");
    assert_problem(
        &reader.get(&path).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "urn:exchange:problem:integrity",
    );

    std::fs::write(&blob, &file.content).expect("restore the blob");
    let reply = reader.get(&path).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.as_ref(), file.content.as_slice());
    running.shutdown().await;
}

/// Size of the large upload.
const LARGE_FILE_BYTES: u64 = 512 << 20;
/// Size of the chunks it is produced in.
const CHUNK_BYTES: usize = 1 << 20;
/// The child gateway's peak resident memory must stay below this.
const PEAK_RSS_LIMIT_KIB: u64 = 160 << 10;

/// The peak resident set size (`VmHWM`) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the child's status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// A large file streams through upload, storage and download: the gateway (a child process)
/// never holds it in memory, and the bytes come back exactly.
#[tokio::test(flavor = "multi_thread")]
async fn large_files_stream_with_bounded_memory() {
    let pki = TestPki::new("survey-large");
    let greenery = Receiver::start(&pki, BureauId::Greenery, Behaviour::Healthy).await;
    let config = pki.root().join("gateway.toml");
    std::fs::write(&config, pki.config_toml(&[&greenery])).expect("write the config");
    let mut child = ChildGateway::spawn(&config);
    child.wait_ready(&pki).await;
    let idle_kib = peak_rss_kib(child.pid());
    let planning = BureauClient::new(&pki, child.addr, BureauId::Planning);
    let reader = BureauClient::new(&pki, child.addr, BureauId::Greenery);
    let mut rng = fastrand::Rng::with_seed(606);

    let figures = [
        (FigureName::GreeningArea, "2400m2"),
        (FigureName::GreeningRatio, "35.5%"),
    ];
    let result = result_of(&mut rng, SurveyKind::Greening, &figures, &[]);
    let name = "綠地測量點雲.las";
    let media_type = "application/octet-stream";

    // The body: the metadata part, the file part generated 1 MiB at a time (hashed as it is
    // sent), the closing boundary.
    let (content_type, empty) = gateway::sim::survey_upload(
        &metadata(&result, &figures),
        &[(name.to_owned(), media_type.to_owned(), Vec::new())],
    );
    let boundary = content_type
        .split_once("boundary=")
        .map(|(_, b)| b.to_owned())
        .expect("a boundary");
    let closing = format!("\r\n--{boundary}--\r\n").into_bytes();
    assert!(empty.ends_with(&closing));
    let head = Bytes::copy_from_slice(&empty[..empty.len() - closing.len()]);
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let chunks = {
        let hasher = hasher.clone();
        let chunk_rng = fastrand::Rng::with_seed(607);
        futures_util::stream::unfold((chunk_rng, 0u64), move |(mut rng, sent)| {
            let hasher = hasher.clone();
            async move {
                if sent >= LARGE_FILE_BYTES {
                    return None;
                }
                let len = CHUNK_BYTES.min((LARGE_FILE_BYTES - sent) as usize);
                let mut chunk = vec![0u8; len];
                rng.fill(&mut chunk);
                hasher
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .update(&chunk);
                Some((Bytes::from(chunk), (rng, sent + len as u64)))
            }
        })
    };
    let body = futures_util::stream::iter([head])
        .chain(chunks)
        .chain(futures_util::stream::iter([Bytes::from(closing)]))
        .map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let started = Instant::now();
    let response = planning
        .stream_request(
            "POST",
            "/v1/surveys",
            &[("content-type", &content_type)],
            StreamBody::new(body).boxed_unsync(),
        )
        .await;
    let status = response.status();
    let answer = response
        .into_body()
        .collect()
        .await
        .expect("the answer")
        .to_bytes();
    let upload_seconds = started.elapsed().as_secs_f64();
    let uploaded_sha = format!(
        "{:x}",
        hasher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .finalize()
    );
    let p = published(&Reply {
        status,
        headers: Default::default(),
        body: answer,
    });
    assert_eq!(p.notified, BTreeSet::from([BureauId::Greenery]));
    wait_until("greenery is notified of the large file", async || {
        !survey_events(&greenery).is_empty()
    })
    .await;
    let notice = survey_events(&greenery)[0]
        .1
        .survey()
        .cloned()
        .expect("a notice");
    assert_eq!(notice.result.files.len(), 1);
    let file = &notice.result.files[0];
    assert_eq!(file.sha256.as_str(), uploaded_sha);
    assert_eq!(file.size_bytes, LARGE_FILE_BYTES);
    assert_eq!(file.name.as_str(), name);
    let blob = pki.blob_dir().join(&uploaded_sha[..2]).join(&uploaded_sha);
    assert_eq!(
        std::fs::metadata(&blob).expect("the blob").len(),
        LARGE_FILE_BYTES
    );

    // Download, hashing the stream.
    let started = Instant::now();
    let response = reader
        .stream_request(
            "GET",
            &format!("/v1/surveys/{}/files/{uploaded_sha}", p.survey_id.as_str()),
            &[],
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some(LARGE_FILE_BYTES.to_string().as_str())
    );
    let mut body = response.into_body();
    let mut downloaded = Sha256::new();
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("the download streams").into_data() {
            size += data.len() as u64;
            downloaded.update(&data);
        }
    }
    let download_seconds = started.elapsed().as_secs_f64();
    assert_eq!(size, LARGE_FILE_BYTES);
    assert_eq!(format!("{:x}", downloaded.finalize()), uploaded_sha);

    let peak_kib = peak_rss_kib(child.pid());
    println!(
        "large file: {} MiB uploaded in {upload_seconds:.1} s, downloaded in {download_seconds:.1} s; \
         child gateway peak RSS (VmHWM) {:.1} MiB (idle {:.1} MiB), limit {} MiB",
        LARGE_FILE_BYTES >> 20,
        peak_kib as f64 / 1024.0,
        idle_kib as f64 / 1024.0,
        PEAK_RSS_LIMIT_KIB >> 10
    );
    assert!(
        peak_kib < PEAK_RSS_LIMIT_KIB,
        "the gateway's peak RSS was {peak_kib} KiB for a {} MiB file",
        LARGE_FILE_BYTES >> 20
    );
    child.sigkill();
}
