//! CPU time per record (user + sys, every thread of the process: librdkafka
//! compresses and does its I/O on its own threads) and what a record costs
//! on Lambda, which bills duration, not CPU.

use std::{fmt::Write as _, future::Future, path::Path, time::Duration};

use crate::publisher::{Throughput, median};

/// CPU time (user + sys) this process has spent so far, all its threads.
pub fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given; on failure
    // (which RUSAGE_SELF cannot produce) the zeroed struct reads as 0.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Runs `work` (which returns its records/s) and also returns the µs of
/// this process's CPU per record over the same window. Only meaningful
/// when nothing else of weight runs in this process meanwhile (see
/// [`background`]).
pub async fn timed(records: usize, work: impl Future<Output = f64>) -> (f64, f64) {
    let before = process_cpu();
    let rate = work.await;
    let cpu = process_cpu().saturating_sub(before);
    (rate, cpu.as_secs_f64() * 1e6 / records as f64)
}

/// µs of CPU per second this process spends while idle (its producers'
/// threads waiting, the runtime parked): what the handler's and raw
/// rdkafka's figures carry besides their own work.
pub async fn background(over: Duration) -> f64 {
    let before = process_cpu();
    tokio::time::sleep(over).await;
    process_cpu().saturating_sub(before).as_secs_f64() * 1e6 / over.as_secs_f64()
}

/// Lambda's prices for one architecture and region.
#[derive(Debug, Clone, Copy)]
pub struct Pricing {
    pub per_gb_second: f64,
    pub per_request: f64,
}

/// arm64 in us-east-1, first duration tier, as published on
/// <https://aws.amazon.com/lambda/pricing/> (also in artillery 2.0.28's
/// `lib/platform/aws-lambda/prices.js`): $0.0000133334 per GB-s, $0.20 per
/// million requests. Not fetched at run time.
pub const ARM64_US_EAST_1: Pricing = Pricing {
    per_gb_second: 0.000_013_333_4,
    per_request: 0.20 / 1e6,
};

/// Lambda gives a function one full vCPU at 1,769 MB, proportionally less
/// below.
pub const FULL_VCPU_MB: f64 = 1769.0;

/// Seconds of billed duration for `cpu_seconds` of CPU-bound work at
/// `memory_mb`: a function gets min(1, M / 1769) of a vCPU.
pub fn billed_for_cpu(cpu_seconds: f64, memory_mb: u32) -> f64 {
    cpu_seconds / (f64::from(memory_mb) / FULL_VCPU_MB).min(1.0)
}

/// Dollars per million events, when each costs `billed_seconds` of
/// duration at `memory_mb` and `batch_size` events share one invocation.
/// (Per-invocation rounding up to the next ms is left out: at 1,000
/// records a batch it is under 1 ms in hundreds.)
pub fn cost_per_million(
    billed_seconds: f64,
    memory_mb: u32,
    batch_size: u32,
    pricing: Pricing,
) -> f64 {
    let duration = 1e6 * billed_seconds * f64::from(memory_mb) / 1024.0 * pricing.per_gb_second;
    let requests = 1e6 / f64::from(batch_size) * pricing.per_request;
    duration + requests
}

/// The stream publisher's `MemorySize` and event-source `BatchSize` in
/// template.yaml (the first of each after `StreamPublisherFunction:`).
pub fn publisher_sizing(template: &str) -> Option<(u32, u32)> {
    let from = template.find("\n  StreamPublisherFunction:")?;
    let value = |key: &str| -> Option<u32> {
        template[from..]
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((value("MemorySize:")?, value("BatchSize:")?))
}

pub fn template_sizing(root: &Path) -> Result<(u32, u32), String> {
    let path = root.join("template.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    publisher_sizing(&text).ok_or_else(|| format!("{}: no stream publisher sizing", path.display()))
}

/// The targets table's row: CPU per record, Python / handler, at 10,000.
pub fn target_row(md: &mut String, tansu: &[Throughput], verdict: fn(bool) -> &'static str) {
    if let Some(t) = tansu.iter().find(|t| t.records == 10_000) {
        let ratio = median(&t.python_cpu) / median(&t.handler_cpu);
        // The Python peer produces through the same librdkafka with the
        // same settings, and the handler does everything raw rdkafka does:
        // no handler producing through librdkafka so can be cheaper than
        // raw rdkafka, so Python / raw is the most it could reach.
        let ceiling = median(&t.python_cpu) / median(&t.raw_cpu);
        let _ = writeln!(
            md,
            "| Rust handler ≥ 20 × cheaper in CPU per record than the Python peer (10,000 records, tansu) | {ratio:.1} × ({:.1} µs vs {:.1} µs); \
the most a handler producing through librdkafka with these settings could reach is {ceiling:.1} ×, raw rdkafka's own {:.1} µs (the peer runs the same librdkafka) | {} |",
            median(&t.handler_cpu),
            median(&t.python_cpu),
            median(&t.raw_cpu),
            verdict(ratio >= 20.0)
        );
    }
}

/// §1's CPU and cost subsections (tansu only), at the sizing of the
/// template.yaml under `root`.
pub fn render(md: &mut String, tansu: &[Throughput], root: &Path) {
    let (memory_mb, batch_size) = match template_sizing(root) {
        Ok(sizing) => sizing,
        Err(e) => {
            let _ = writeln!(md, "CPU per record and cost not rendered: {e}\n");
            return;
        }
    };
    let _ = writeln!(
        md,
        "### CPU per record (tansu)\n\n\
User + system CPU time of every thread of the contender's process (librdkafka's threads compress and do the I/O), \
`getrusage(RUSAGE_SELF)` before and after each run above (same batches, same interleaved rounds), divided by the records; medians. \
The handler and raw rdkafka run in the bench process, where nothing else runs meanwhile but the other contender's idle producer and the parked runtime \
(what the bench process spends idle, measured before each size, is listed with every run; tansu is another process). The Python peer reports its own `resource.getrusage` delta over the window it times. \
The mock-broker runs are left out: that broker's threads run in the bench process, so its CPU would count as the publisher's.\n"
    );
    let _ = writeln!(
        md,
        "| records | handler µs/record | raw rdkafka µs/record | Python µs/record | handler − raw | Python / handler |\n|---:|---:|---:|---:|---:|---:|"
    );
    for t in tansu {
        let (h, r, p) = (
            median(&t.handler_cpu),
            median(&t.raw_cpu),
            median(&t.python_cpu),
        );
        let _ = writeln!(
            md,
            "| {} | {h:.1} | {r:.1} | {p:.1} | {:.1} | {:.1} |",
            t.records,
            h - r,
            p / h
        );
    }
    let _ = writeln!(md, "\nEvery run (µs of CPU per record):\n\n```");
    for t in tansu {
        let _ = writeln!(
            md,
            "{:>6}: handler [{}]  raw [{}]  python [{}]  (bench process idle: {:.0} µs/s, {:.2} µs/record at the handler's rate)",
            t.records,
            one_decimal(&t.handler_cpu),
            one_decimal(&t.raw_cpu),
            one_decimal(&t.python_cpu),
            t.background_us_per_s,
            t.background_us_per_s / median(&t.handler)
        );
    }
    let _ = writeln!(md, "```\n\n{}\n", crate::profile::NOTE);

    let Some(t) = tansu.iter().find(|t| t.records == 10_000) else {
        return;
    };
    let p = ARM64_US_EAST_1;
    let _ = writeln!(
        md,
        "### Lambda cost per million events\n\n\
At the stream publisher's size in template.yaml: {memory_mb} MB, arm64, batches of {batch_size} records (one request each). \
Prices: arm64 in us-east-1, ${:.10} per GB-second (first tier) and ${:.2} per million requests, as published on aws.amazon.com/lambda/pricing \
(2026; copied into the bench, not fetched). Lambda bills duration, not CPU: at M MB a function gets about M / {FULL_VCPU_MB:.0} of a vCPU \
({:.2} here), so a CPU-bound record bills cpu_time / min(1, M / {FULL_VCPU_MB:.0}) of duration. The wall-clock row prices the duration measured \
on the local broker (10,000-record batches, a 2-core machine, neither CPU-capped nor on a real network) as if billed as is.\n",
        p.per_gb_second,
        p.per_request * 1e6,
        (f64::from(memory_mb) / FULL_VCPU_MB).min(1.0)
    );
    let _ = writeln!(
        md,
        "| basis (10,000 records, medians) | Rust handler | Python peer | Python / handler |\n|---|---:|---:|---:|"
    );
    let cost = |seconds: f64| cost_per_million(seconds, memory_mb, batch_size, p);
    let by_cpu = |us: f64| cost(billed_for_cpu(us / 1e6, memory_mb));
    let (h, py) = (
        by_cpu(median(&t.handler_cpu)),
        by_cpu(median(&t.python_cpu)),
    );
    let _ = writeln!(
        md,
        "| CPU time, CPU-bound at {memory_mb} MB | ${h:.5} | ${py:.5} | {:.1} |",
        py / h
    );
    let (h, py) = (
        cost(1.0 / median(&t.handler)),
        cost(1.0 / median(&t.python)),
    );
    let _ = writeln!(
        md,
        "| wall-clock on the local broker | ${h:.5} | ${py:.5} | {:.1} |\n",
        py / h
    );
}

fn one_decimal(values: &[f64]) -> String {
    values
        .iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (cpu µs per record, memory MB, batch size, $ per million events)
    #[test]
    fn lambda_cost_per_million_events() {
        let p = ARM64_US_EAST_1;
        let requests_at_1000 = 1_000.0 * 0.20 / 1e6;
        let cases = [
            // 512 MB gets 512/1769 of a vCPU: 1 µs of CPU bills 3.455 µs.
            (
                1.0,
                512,
                1_000,
                1e6 * 1e-6 * 1769.0 / 512.0 * 0.5 * 0.000_013_333_4 + requests_at_1000,
            ),
            // At 1,769 MB and above a function has a whole vCPU, no more.
            (
                1.0,
                1_769,
                1_000,
                1e6 * 1e-6 * 1769.0 / 1024.0 * 0.000_013_333_4 + requests_at_1000,
            ),
            (
                1.0,
                3_538,
                1_000,
                1e6 * 1e-6 * 3538.0 / 1024.0 * 0.000_013_333_4 + requests_at_1000,
            ),
            // Requests only.
            (0.0, 512, 1, 0.20),
            (0.0, 512, 100, 0.002),
            // 100 µs at 1,024 MB: 100 s of 0.5789 vCPU = 172.75 GB-s.
            (
                100.0,
                1_024,
                1_000_000,
                172.753_9 * 0.000_013_333_4 + 0.2e-6,
            ),
        ];
        for (cpu_us, memory_mb, batch, expected) in cases {
            let got =
                cost_per_million(billed_for_cpu(cpu_us / 1e6, memory_mb), memory_mb, batch, p);
            assert!(
                (got - expected).abs() <= expected * 1e-4,
                "{cpu_us} µs at {memory_mb} MB, batch {batch}: {got} != {expected}"
            );
        }
    }

    /// Work on another thread counts (librdkafka's threads do much of a
    /// publisher's). Lenient bound: the machine may be busy.
    #[test]
    fn cpu_of_every_thread_counts() {
        let before = process_cpu();
        std::thread::spawn(|| {
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_millis(200) {
                std::hint::black_box(started);
            }
        })
        .join()
        .unwrap();
        let spent = process_cpu().saturating_sub(before);
        assert!(spent >= Duration::from_millis(20), "{spent:?}");
    }

    #[test]
    fn sizing_is_the_publishers_own() {
        let template = "Resources:\n  CommandIngestionFunction:\n    Properties:\n      MemorySize: 256\n      Events:\n        X:\n          Properties:\n            BatchSize: 10\n  StreamPublisherFunction:\n    Properties:\n      MemorySize: 512\n      Events:\n        Stream:\n          Properties:\n            BatchSize: 1000\n  IndexerFunction:\n    Properties:\n      MemorySize: 128\n";
        assert_eq!(publisher_sizing(template), Some((512, 1000)));
        assert_eq!(publisher_sizing("Resources:\n  Other:\n"), None);
        // The repository's own template names both.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert!(template_sizing(&root).is_ok());
    }
}
