//! The audit trail end to end, over a real gateway (mutual TLS, HTTP, SQLite files and
//! PostgreSQL schemas): the trail a node wrote verifies; an altered entry, a deleted entry, a
//! reordered pair and a rewritten tail are each found and named; a prune keeps a signed anchor;
//! an evidence bundle verifies offline with the CA alone — by `gateway`, and by `tar`,
//! `sha256sum` and `openssl` — and fails after one byte of a payload or entry changes; two nodes
//! writing one PostgreSQL database at once leave a trail that verifies.
//!
//! The PostgreSQL tests need `EXCHANGE_TEST_POSTGRES`; without it they print `SKIPPED: …` and
//! pass, except in CI, where they fail.

mod support;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use gateway::audit::bundle::{self, Selector};
use gateway::audit::checkpoint;
use gateway::audit::sign::NodeSigner;
use gateway::audit::verify;
use gateway::config::StoreLocation;
use gateway::store::Store;
use gateway::store::any::AnyStore;
use gateway::store::audit::{self as trail, AuditRow};
use schemas::{BureauId, CaseStatus, Event, Item, MessageId};
use support::pg::{Schema, server};
use support::{
    Behaviour, BureauClient, Receiver, ReplyExt, TestPki, case_event, next_in_case, push_receivers,
    start_gateway_on, wait_until,
};

/// One test of this binary at a time (two cores; the PostgreSQL ones share the server).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Raw SQL on the store behind the gateway's back: what someone with database access could do.
enum Tamperer {
    Sqlite(PathBuf),
    Postgres(String),
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn or_null(text: &Option<String>) -> String {
    text.as_deref().map_or_else(|| "NULL".to_owned(), quoted)
}

impl Tamperer {
    async fn exec(&self, sql: &str) {
        match self {
            Self::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                conn.execute_batch(sql).expect(sql);
            }
            Self::Postgres(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect to PostgreSQL");
                tokio::spawn(connection);
                client.batch_execute(sql).await.expect(sql);
            }
        }
    }

    /// Writes `row` over the entry at (its chain, `seq`).
    async fn put(&self, seq: i64, row: &AuditRow) {
        self.exec(&format!(
            "UPDATE audit_log SET at = {}, kind = {}, bureau = {}, message_id = {}, content = {},
                 content_sha256 = {}, prev_hash = {}, hash = {}
             WHERE chain = {} AND seq = {seq}",
            row.at,
            quoted(&row.kind),
            or_null(&row.bureau),
            or_null(&row.message_id),
            quoted(&row.content),
            quoted(&row.content_sha256),
            quoted(&row.prev_hash),
            quoted(&row.hash),
            quoted(&row.chain),
        ))
        .await;
    }

    async fn delete(&self, row: &AuditRow) {
        self.exec(&format!(
            "DELETE FROM audit_log WHERE chain = {} AND seq = {}",
            quoted(&row.chain),
            row.seq
        ))
        .await;
    }

    async fn insert(&self, row: &AuditRow) {
        self.exec(&format!(
            "INSERT INTO audit_log
                 (chain, seq, at, kind, bureau, message_id, content, content_sha256, prev_hash, hash)
             VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            quoted(&row.chain),
            row.seq,
            row.at,
            quoted(&row.kind),
            or_null(&row.bureau),
            or_null(&row.message_id),
            quoted(&row.content),
            quoted(&row.content_sha256),
            quoted(&row.prev_hash),
            quoted(&row.hash),
        ))
        .await;
    }
}

/// A gateway that took some traffic: planning's cases routed to water and others, delivered,
/// under a signed checkpoint. Its store, reopened after the node stopped.
struct Traffic {
    pki: TestPki,
    store: AnyStore,
    message_ids: Vec<String>,
    checkpoint_dir: PathBuf,
}

fn water_cases(rng: &mut fastrand::Rng, n: usize) -> Vec<Event> {
    (0..n)
        .map(|_| {
            case_event(
                rng,
                BureauId::Planning,
                Item::ConstructionPlanningPermit,
                CaseStatus::Approved,
            )
        })
        .collect()
}

/// Sends `cases` × `per_case` events through `node`; their gateway message ids.
async fn send(
    pki: &TestPki,
    node: std::net::SocketAddr,
    cases: &[Event],
    per_case: u64,
) -> Vec<String> {
    let planning = BureauClient::new(pki, node, BureauId::Planning);
    let mut rng = fastrand::Rng::with_seed(99);
    let mut ids = Vec::new();
    for sequence in 1..=per_case {
        for case in cases {
            let receipt = planning
                .send(&next_in_case(case, sequence, &mut rng))
                .await
                .receipt();
            ids.extend(receipt.message_ids.iter().map(|id| id.as_str().to_owned()));
        }
    }
    ids
}

/// Waits until every push delivery is made.
async fn delivered_everything(receivers: &[Receiver], store: &AnyStore) {
    wait_until("every delivery is made", async || {
        store
            .queue_stats()
            .await
            .expect("queue stats")
            .iter()
            // Civil defense pulls its feed: its deliveries wait for it.
            .all(|s| s.pending == 0 || s.subscriber == BureauId::CivilDefense)
    })
    .await;
    assert!(receivers.iter().any(|r| !r.ids().is_empty()));
}

async fn traffic(name: &str, store: &str) -> Traffic {
    let pki = TestPki::new(name);
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let refs: Vec<&Receiver> = receivers.iter().collect();
    let running = start_gateway_on(&pki, store, &refs, "").await;
    let cases = water_cases(&mut fastrand::Rng::with_seed(5), 4);
    let message_ids = send(&pki, running.addr(), &cases, 3).await;
    delivered_everything(&receivers, running.store()).await;
    let checkpoint_dir = pki.root().join("audit");
    let signer = signer(&pki);
    checkpoint::write(running.store(), &signer, Some(&checkpoint_dir), None)
        .await
        .expect("a checkpoint");
    running.shutdown().await;
    let location = StoreLocation::parse(store).expect("a store location");
    let store = AnyStore::open(&location, 2).await.expect("the store");
    Traffic {
        pki,
        store,
        message_ids,
        checkpoint_dir,
    }
}

fn signer(pki: &TestPki) -> NodeSigner {
    let (cert, key) = pki.gateway();
    NodeSigner::load(
        "gw-1",
        &gateway::net::tls::TlsFiles {
            ca: pki.ca().to_owned(),
            cert,
            key,
            crls: Vec::new(),
        },
    )
    .expect("the node's key")
}

async fn report(traffic: &Traffic) -> verify::Report {
    let ca = std::fs::read(traffic.pki.ca()).expect("the CA");
    verify::store(&traffic.store, Some(&ca), Vec::new())
        .await
        .expect("verify")
}

/// The first broken link, which must be in `chain` at `seq` (or after it, for `at_least`) and
/// say `what`.
fn assert_broken(report: &verify::Report, chain: &str, seq: i64, what: &str, case: &str) {
    let broken = report
        .broken
        .first()
        .unwrap_or_else(|| panic!("{case}: verify found nothing"));
    assert_eq!(broken.chain, chain, "{case}: {broken}");
    assert_eq!(broken.seq, seq, "{case}: {broken}");
    assert!(broken.what.contains(what), "{case}: {broken}");
    eprintln!("{case}: found {broken}");
}

/// The longest chain and all its entries.
async fn longest_chain(store: &AnyStore) -> (String, Vec<AuditRow>) {
    let chains = store.audit_chains().await.expect("chains");
    let chain = chains
        .iter()
        .max_by_key(|c| c.head.seq)
        .expect("a chain")
        .chain
        .clone();
    let rows = store
        .audit_entries(&chain, 0, 10_000)
        .await
        .expect("entries");
    (chain, rows)
}

async fn each_tampering_is_found_and_named(traffic: &Traffic, tamper: &Tamperer) {
    let intact = report(traffic).await;
    assert!(intact.is_intact(), "{:?}", intact.broken);
    assert!(
        intact.checkpoints >= 1 && intact.entries >= 24,
        "{intact:?}"
    );
    let (chain, rows) = longest_chain(&traffic.store).await;
    assert!(rows.len() >= 6, "{chain}: {} entries", rows.len());
    let (s, next) = (&rows[2], &rows[3]);

    // An altered entry: its content no longer hashes to what it records.
    let mut altered = s.clone();
    altered.content = altered.content.replacen("\"at\":", "\"at\":1", 1);
    tamper.put(s.seq, &altered).await;
    assert_broken(
        &report(traffic).await,
        &chain,
        s.seq,
        "content was changed",
        "altered",
    );
    tamper.put(s.seq, s).await;

    // A deleted entry.
    tamper.delete(s).await;
    assert_broken(
        &report(traffic).await,
        &chain,
        s.seq,
        "is missing",
        "deleted",
    );
    tamper.insert(s).await;

    // A reordered pair: each entry intact, in the other's place.
    tamper.put(s.seq, next).await;
    tamper.put(next.seq, s).await;
    assert_broken(
        &report(traffic).await,
        &chain,
        s.seq,
        "prev_hash",
        "reordered",
    );
    tamper.put(s.seq, s).await;
    tamper.put(next.seq, next).await;

    // A rewritten tail: one entry changed and every hash after it recomputed, so the chain is
    // consistent again — but no longer what the checkpoint signed.
    let mut head = trail::Link {
        seq: s.seq - 1,
        hash: s.prev_hash.clone(),
    };
    for row in &rows[2..] {
        let mut rewritten = row.clone();
        if row.seq == s.seq {
            // What it records, changed; its columns left as they were.
            rewritten.content =
                rewritten
                    .content
                    .replacen("\"detail\":{", "\"detail\":{\"forged\":1,", 1);
            rewritten.content_sha256 = trail::sha256_hex(rewritten.content.as_bytes());
        }
        rewritten.prev_hash = head.hash.clone();
        rewritten.hash = trail::link_hash(&rewritten.prev_hash, &rewritten.content_sha256);
        head = trail::Link {
            seq: row.seq,
            hash: rewritten.hash.clone(),
        };
        tamper.put(row.seq, &rewritten).await;
    }
    let rewritten = report(traffic).await;
    let broken = rewritten.broken.first().expect("the rewrite is found");
    assert_eq!(broken.chain, chain, "{broken}");
    assert!(
        broken.seq >= s.seq && broken.what.contains("rewritten"),
        "{broken}"
    );
    eprintln!("rewritten tail: found {broken}");
    for row in &rows[2..] {
        tamper.put(row.seq, row).await;
    }

    // Entries removed from the end, below the signed head.
    let last = rows.last().expect("entries");
    tamper.delete(last).await;
    let truncated = report(traffic).await;
    assert!(
        truncated
            .broken
            .iter()
            .any(|b| b.chain == chain && b.what.contains("removed from its end")),
        "{:?}",
        truncated.broken
    );
    tamper.insert(last).await;
    let restored = report(traffic).await;
    assert!(restored.is_intact(), "{:?}", restored.broken);
}

/// Pruning keeps each chain's last pruned link as its anchor, records who pruned, and the
/// signed checkpoint after it confirms the anchor: the rest still verifies.
async fn a_prune_keeps_a_signed_anchor(traffic: &Traffic) {
    let (chain, rows) = longest_chain(&traffic.store).await;
    let before = rows[2].at + 1;
    let anchor = traffic
        .store
        .prune_audit(
            &chain,
            before,
            "operator-alice",
            gateway::clock::now_ms(),
            1_000,
        )
        .await
        .expect("prune")
        .expect("something was pruned");
    assert!(anchor.link.seq >= 3, "{anchor:?}");
    let unsigned = report(traffic).await;
    assert!(
        unsigned
            .broken
            .iter()
            .any(|b| b.what.contains("pruned anchor")),
        "an anchor no checkpoint signed is found: {:?}",
        unsigned.broken
    );
    checkpoint::write(
        &traffic.store,
        &signer(&traffic.pki),
        Some(&traffic.checkpoint_dir),
        None,
    )
    .await
    .expect("a checkpoint");
    let signed = report(traffic).await;
    assert!(signed.is_intact(), "{:?}", signed.broken);
    let chains = traffic.store.audit_chains().await.expect("chains");
    let pruned = chains.iter().find(|c| c.chain == chain).expect("the chain");
    assert_eq!(pruned.start, anchor.link);
    let prunes: Vec<AuditRow> = {
        let mut all = Vec::new();
        for c in &chains {
            all.extend(
                traffic
                    .store
                    .audit_entries(&c.chain, c.start.seq, 10_000)
                    .await
                    .expect("entries")
                    .into_iter()
                    .filter(|r| r.kind == "prune"),
            );
        }
        all
    };
    assert_eq!(prunes.len(), 1, "{prunes:?}");
    assert!(prunes[0].content.contains("operator-alice"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tampering_is_found_on_sqlite() {
    let _serial = SERIAL.lock().await;
    let dir = support::TempDir::new("audit-sqlite");
    let path = dir.path().join("gateway.db");
    let traffic = traffic("audit-sqlite", &format!("sqlite:{}", path.display())).await;
    each_tampering_is_found_and_named(&traffic, &Tamperer::Sqlite(path)).await;
    a_prune_keeps_a_signed_anchor(&traffic).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tampering_is_found_on_postgres() {
    let _serial = SERIAL.lock().await;
    let Some(server) = server() else {
        return;
    };
    let schema = Schema::new(&server);
    let traffic = traffic("audit-postgres", &schema.url()).await;
    each_tampering_is_found_and_named(&traffic, &Tamperer::Postgres(schema.url())).await;
    a_prune_keeps_a_signed_anchor(&traffic).await;
}

/// The files of a tar bundle.
fn untar(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).expect("the bundle"));
    let mut files = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("an entry");
        let name = entry.path().expect("a path").to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read");
        files.insert(name, bytes);
    }
    files
}

fn write_tar(path: &Path, files: &BTreeMap<String, Vec<u8>>) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).expect("create"));
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .expect("append");
    }
    builder.finish().expect("finish");
}

/// `files` with one byte of `name` flipped; with `fix_manifest`, its manifest line updated too
/// (the forger's next step).
fn flipped(
    files: &BTreeMap<String, Vec<u8>>,
    name: &str,
    fix_manifest: bool,
) -> BTreeMap<String, Vec<u8>> {
    let mut changed = files.clone();
    let bytes = changed.get_mut(name).expect(name);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    if fix_manifest {
        let new_sha = trail::sha256_hex(&changed[name]);
        let manifest = String::from_utf8(changed["MANIFEST.sha256"].clone()).expect("UTF-8");
        let fixed: String = manifest
            .lines()
            .map(|line| match line.split_once("  ") {
                Some((_, path)) if path == name => format!("{new_sha}  {path}\n"),
                _ => format!("{line}\n"),
            })
            .collect();
        changed.insert("MANIFEST.sha256".into(), fixed.into_bytes());
    }
    changed
}

fn run(dir: &Path, script: &str) -> String {
    let output = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("bash");
    assert!(
        output.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_verifies_offline_and_fails_after_one_byte_changes() {
    let _serial = SERIAL.lock().await;
    let dir = support::TempDir::new("audit-bundle");
    let path = dir.path().join("gateway.db");
    let traffic = traffic("audit-bundle", &format!("sqlite:{}", path.display())).await;
    let message = MessageId::parse(&traffic.message_ids[5]).expect("an id");
    let out = dir.path().join("evidence.tar");
    let exported = bundle::export(&traffic.store, &Selector::Message(message.clone()), &out)
        .await
        .expect("export");
    // The ingest, the route, one delivery per receiver; its payload; one checkpoint.
    assert!(
        exported.entries >= 3 && exported.payloads == 1 && exported.checkpoints == 1,
        "{exported:?}"
    );
    let ca = std::fs::read(traffic.pki.ca()).expect("the CA");
    let verified = bundle::verify(&out, &ca).expect("verify");
    assert!(verified.broken.is_none(), "{verified:?}");
    assert_eq!(verified.entries, exported.entries);

    // With standard tools only: tar, sha256sum, openssl, and the shell's fold of the links.
    let files = untar(&out);
    if openssl_is_here() {
        check_with_standard_tools(dir.path(), &out, traffic.pki.ca(), &files);
    }

    // One byte changed, in a payload or an entry: found, with or without the manifest fixed.
    let payload = files
        .keys()
        .find(|p| p.starts_with("payloads/"))
        .expect("a payload")
        .clone();
    let entry = files
        .keys()
        .find(|p| p.starts_with("chains/") && p.ends_with(".json"))
        .expect("an entry")
        .clone();
    for (name, fix, expect) in [
        (&payload, false, "not the manifest's"),
        (&payload, true, "not its ingest entry's"),
        (&entry, false, "not the manifest's"),
        (&entry, true, "not in the chain's links"),
    ] {
        let forged = dir.path().join("forged.tar");
        write_tar(&forged, &flipped(&files, name, fix));
        let found = bundle::verify(&forged, &ca).expect("verify");
        let broken = found
            .broken
            .unwrap_or_else(|| panic!("{name} (manifest fixed: {fix}) passed"));
        assert!(
            broken.contains(expect),
            "{name}, manifest fixed {fix}: {broken}"
        );
        eprintln!("one byte of {name} (manifest fixed: {fix}): {broken}");
    }

    // Another CA does not vouch for the node.
    let other = TestPki::new("audit-bundle-other-ca");
    let foreign = std::fs::read(other.ca()).expect("another CA");
    let refused = bundle::verify(&out, &foreign).expect("verify");
    assert!(
        refused
            .broken
            .is_some_and(|b| b.contains("not issued by this CA"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_writing_one_database_leave_a_trail_that_verifies() {
    let _serial = SERIAL.lock().await;
    let Some(server) = server() else {
        return;
    };
    let schema = Schema::new(&server);
    let pki = TestPki::new("audit-two-nodes");
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let refs: Vec<&Receiver> = receivers.iter().collect();
    let one = start_gateway_on(&pki, &schema.url(), &refs, "").await;
    let two = start_gateway_on(&pki, &schema.url(), &refs, "node = \"gw-2\"\n").await;
    let cases = water_cases(&mut fastrand::Rng::with_seed(11), 6);
    let (first, second) = cases.split_at(3);
    let (a, b) = tokio::join!(
        send(&pki, one.addr(), first, 4),
        send(&pki, two.addr(), second, 4)
    );
    delivered_everything(&receivers, one.store()).await;
    checkpoint::write(one.store(), &signer(&pki), None, None)
        .await
        .expect("a checkpoint");
    let chains = one.store().audit_chains().await.expect("chains");
    let names: Vec<&str> = chains.iter().map(|c| c.chain.as_str()).collect();
    assert!(names.iter().any(|c| c.starts_with("gw-1/")), "{names:?}");
    assert!(names.iter().any(|c| c.starts_with("gw-2/")), "{names:?}");
    let ca = std::fs::read(pki.ca()).expect("the CA");
    let report = verify::store(one.store(), Some(&ca), Vec::new())
        .await
        .expect("verify");
    assert!(report.is_intact(), "{:?}", report.broken);
    for id in a.iter().chain(&b) {
        let told = one
            .store()
            .audit_of_message(&MessageId::parse(id).expect("an id"), 100)
            .await
            .expect("entries");
        assert!(told.iter().any(|r| r.kind == "route"), "{id}: {told:?}");
        assert!(told.iter().any(|r| r.kind == "attempt"), "{id}: {told:?}");
    }
    eprintln!(
        "two nodes: {} entries in {} chains ({names:?}), verified",
        report.entries, report.chains
    );
    two.shutdown().await;
    one.shutdown().await;
}

/// Whether `openssl` runs here; if not, says the standard-tools check is skipped (in CI it must
/// run).
fn openssl_is_here() -> bool {
    let here = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !here {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must check bundles with openssl"
        );
        eprintln!("SKIPPED: the bundle's check with tar, sha256sum and openssl: install openssl");
    }
    here
}

/// The bundle checked as a bureau would, by hand: `tar`, `sha256sum -c`, `openssl verify` and
/// `openssl dgst`, and the shell's fold of each chain's links up to its signed head.
fn check_with_standard_tools(
    dir: &Path,
    bundle: &Path,
    ca: &Path,
    files: &BTreeMap<String, Vec<u8>>,
) {
    let opened = dir.join("opened");
    std::fs::create_dir_all(&opened).expect("mkdir");
    std::fs::copy(ca, opened.join("ca.pem")).expect("the CA");
    run(&opened, &format!("tar -xf {}", bundle.display()));
    run(&opened, "sha256sum --quiet -c MANIFEST.sha256");
    let checkpoint_json = files
        .keys()
        .find(|p| p.starts_with("checkpoints/") && p.ends_with(".json"))
        .expect("a checkpoint")
        .clone();
    let id = checkpoint_json
        .trim_start_matches("checkpoints/")
        .trim_end_matches(".json");
    run(
        &opened,
        &format!("openssl verify -CAfile ca.pem checkpoints/{id}.pem"),
    );
    let signature = run(
        &opened,
        &format!(
            "openssl x509 -in checkpoints/{id}.pem -pubkey -noout > node.pub && \
             openssl dgst -sha256 -verify node.pub -signature checkpoints/{id}.sig checkpoints/{id}.json"
        ),
    );
    assert!(signature.contains("Verified OK"), "{signature}");
    let body: serde_json::Value = serde_json::from_slice(&files[&checkpoint_json]).expect("JSON");
    for links in files.keys().filter(|p| p.ends_with("/links.txt")) {
        let chain = links
            .trim_start_matches("chains/")
            .trim_end_matches("/links.txt");
        let folded = run(
            &opened,
            &format!(
                "h=$(sed -n 's/^start //p' {links}); \
                 while read seq sha; do h=$(printf %s%s \"$h\" \"$sha\" | sha256sum | cut -c1-64); done \
                   < <(grep -v '^start ' {links}); echo \"$h\""
            ),
        );
        let signed = body["chains"]
            .as_array()
            .expect("chains")
            .iter()
            .find(|c| c["chain"] == chain)
            .expect("the chain is signed");
        assert_eq!(folded.trim(), signed["head"]["hash"], "{chain}");
    }
}
