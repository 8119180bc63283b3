//! Fuzzing without a nightly toolchain: proptest strategies generate the
//! input, [`fuzz`] keeps generating for a time budget, and [`Counting`]
//! (the test binary's global allocator) measures what one input allocates.
//!
//! Each target is its own test binary (`tests/*.rs`), so its allocator
//! counts only its own work. The budget per target is `FUZZ_SECONDS`
//! (default 2, the smoke `make test` runs; `make fuzz` gives each 60).
//! A failure prints the input, shrunk, and proptest's seed to replay it.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use proptest::{
    collection::vec,
    prelude::*,
    strategy::Strategy,
    test_runner::{Config, TestCaseError, TestRunner},
};
use serde_json::{Map, Value};

/// The system allocator, counting the bytes live and the peak since the
/// last [`Counting::reset_peak`].
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let grown = new_size - layout.size();
            let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

impl Counting {
    /// Starts a measurement; returns the bytes live now.
    pub fn reset_peak() -> usize {
        let live = LIVE.load(Ordering::Relaxed);
        PEAK.store(live, Ordering::Relaxed);
        live
    }

    /// Bytes allocated on top of `base` at the highest point since.
    pub fn peak_above(base: usize) -> usize {
        PEAK.load(Ordering::Relaxed).saturating_sub(base)
    }
}

/// How much one input may allocate: a generous multiple of its size (the
/// decoders copy, parse into trees and format errors) plus a fixed floor.
/// Unbounded means growing faster than the input, which this catches.
pub fn allocation_bound(input_len: usize) -> usize {
    64 * input_len + 4 * 1024 * 1024
}

/// The time budget per target.
pub fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(2);
    Duration::from_secs(seconds)
}

/// Runs `check` on inputs from `strategy` until the budget is spent;
/// panics with the (shrunk) failing input. Returns the number of inputs.
pub fn fuzz<S, F>(name: &str, strategy: S, check: F) -> u64
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(S::Value) -> Result<(), TestCaseError>,
{
    let until = Instant::now() + budget();
    let inputs = std::cell::Cell::new(0u64);
    while Instant::now() < until {
        // A runner counts its successes for good: a fresh one (with a
        // fresh random seed) per round of 64.
        let mut runner = TestRunner::new(Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        });
        let outcome = runner.run(&strategy, |input| {
            inputs.set(inputs.get() + 1);
            check(input)
        });
        if let Err(e) = outcome {
            panic!("{name}: {e}");
        }
    }
    eprintln!("{name}: {} inputs in {:?}", inputs.get(), budget());
    inputs.get()
}

/// Fails the case when `len` bytes of input made the code allocate more
/// than [`allocation_bound`] since `base`.
pub fn check_allocation(base: usize, len: usize) -> Result<(), TestCaseError> {
    let peak = Counting::peak_above(base);
    if peak > allocation_bound(len) {
        return Err(TestCaseError::fail(format!(
            "{peak} bytes allocated for {len} bytes of input"
        )));
    }
    Ok(())
}

/// Any JSON value: leaves of every kind (strings from `text`), arrays, and
/// objects whose keys come from `keys` (the decoder's own field names, so
/// that nested input gets past the first checks), nested up to `depth`
/// with up to `fields` entries per object.
pub fn json_value(
    keys: &'static [&'static str],
    text: BoxedStrategy<String>,
    depth: u32,
    fields: usize,
) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text.prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 64, 8, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((prop::sample::select(keys), inner), 0..fields).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
    .boxed()
}
