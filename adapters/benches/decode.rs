//! Decode + normalize throughput per adapter, in cases/s and MB/s, and encode throughput (what
//! every push costs) in cases/s.
//!
//! Each adapter decodes a fixed set of its own generated messages (~1 KB each; batches for the
//! batch format), and encodes the events they carry. Run: `cargo bench -p adapters --bench
//! decode`. The README quotes the figures.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn decode(c: &mut Criterion) {
    for adapter in adapters::ALL {
        let mut rng = fastrand::Rng::with_seed(42);
        let messages: Vec<_> = (0..200).map(|_| adapter.sample(&mut rng)).collect();
        let bytes: usize = messages.iter().map(|m| m.body.len()).sum();
        let cases: usize = messages
            .iter()
            .map(|m| {
                adapter
                    .decode(&m.body, &m.content_type)
                    .map_or(0, |e| e.len())
            })
            .sum();
        let name = adapter.bureau().as_str();
        eprintln!(
            "{name}: {} messages, {cases} cases, {:.0} bytes per case",
            messages.len(),
            bytes as f64 / cases as f64
        );
        let run = |b: &mut criterion::Bencher<'_>| {
            b.iter(|| {
                for message in &messages {
                    black_box(adapter.decode(black_box(&message.body), &message.content_type)).ok();
                }
            })
        };
        let mut group = c.benchmark_group("decode_cases");
        group.throughput(Throughput::Elements(cases as u64));
        group.bench_function(name, run);
        group.finish();
        let mut group = c.benchmark_group("decode_bytes");
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, run);
        group.finish();
    }
}

fn encode(c: &mut Criterion) {
    for adapter in adapters::ALL {
        let mut rng = fastrand::Rng::with_seed(42);
        let events: Vec<_> = (0..200)
            .map(|_| adapter.sample(&mut rng))
            .flat_map(|m| adapter.decode(&m.body, &m.content_type).unwrap_or_default())
            .collect();
        let mut group = c.benchmark_group("encode_cases");
        group.throughput(Throughput::Elements(events.len() as u64));
        group.bench_function(adapter.bureau().as_str(), |b| {
            b.iter(|| {
                for event in &events {
                    black_box(adapter.encode(black_box(event))).ok();
                }
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = decode, encode
}
criterion_main!(benches);
