//! The demo's DCB step with `decide_and_append`: the client reads the
//! account's events (a query by selector, every page), the closure decides
//! on them, and the client appends with `Max(selector, as_of)`. Another
//! client withdraws while the first decision is being made, so that append
//! is refused (409) and the client reads and decides again, on its own.

use std::sync::atomic::{AtomicU32, Ordering};

use evidentsource_client::{BatchSummary, Client, Decided, Event};

use super::{Verdict, account, event, shown};

/// The account's balance from its events.
fn balance(events: &[Event]) -> i64 {
    events
        .iter()
        .map(|e| {
            let amount = e
                .data
                .as_ref()
                .and_then(|d| d["amount"].as_i64())
                .unwrap_or(0);
            match e.event_type.as_str() {
                "com.example.deposited" => amount,
                "com.example.withdrawn" => -amount,
                _ => 0,
            }
        })
        .sum()
}

/// Withdraw everything, deciding on the balance read; a teller's
/// withdrawal of 50 lands between the first read and its append.
pub(super) async fn read_decide_append(
    client: &Client,
    db: &str,
    verdict: &mut Verdict,
    batches: &mut Vec<BatchSummary>,
) -> Result<(), String> {
    let decisions = AtomicU32::new(0);
    let mut seen = Vec::new();
    let mut teller = None;
    println!("-> client.decide_and_append(db, subject account-42, |events| withdraw the balance)");
    let r = client
        .decide_and_append(db, &account(), |events| {
            let n = decisions.fetch_add(1, Ordering::SeqCst) + 1;
            let funds = balance(events);
            println!("   decision {n}: {} events, balance {funds}", events.len());
            seen.push((events.len(), funds));
            if n == 1 {
                // Another client, between this read and this append.
                println!("   meanwhile a teller withdraws 50");
                let answer = tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(client.transact(
                        db,
                        &[event("e-teller", "com.example.withdrawn", 50)],
                        &[],
                        Some("teller-withdraw-50"),
                    ))
                });
                shown(&answer);
                teller = Some(answer);
            }
            (funds > 0).then(|| {
                vec![event(
                    &format!("e-withdraw-{n}"),
                    "com.example.withdrawn",
                    funds,
                )]
            })
        })
        .await;
    shown(&r);
    let teller = teller.and_then(Result::ok);
    verdict.check(
        teller
            .as_ref()
            .is_some_and(|b| (b.basis, b.revision) == (4, 5)),
        "the teller's withdrawal: revision 5",
    );
    batches.extend(teller);
    verdict.check(
        seen == [(4, 120), (5, 70)],
        format!("decided twice: on 4 events (balance 120), refused, then on 5 (balance 70); decisions: {seen:?}"),
    );
    let appended = match r {
        Ok(Decided::Appended(b)) => Some(b),
        _ => None,
    };
    verdict.check(
        appended
            .as_ref()
            .is_some_and(|b| (b.basis, b.revision) == (5, 6)),
        "withdrew 70 at revision 6",
    );
    batches.extend(appended);
    Ok(())
}
