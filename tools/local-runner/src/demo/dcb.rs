//! The demo's DCB step: read the events a decision depends on with
//! `POST /databases/{name}/query`, decide, and append with
//! `Max(selector, as_of)`, so that anything appended meanwhile to what was
//! read refuses the append (409), and the client reads again and decides
//! again (docs/api.md).

use serde_json::{Value, json};

use super::{Batch, Verdict, batch_of, call, event};

/// The account's balance from its events.
fn balance(events: &[Value]) -> i64 {
    events
        .iter()
        .map(|e| {
            let amount = e["data"]["amount"].as_i64().unwrap_or(0);
            match e["type"].as_str() {
                Some("com.example.deposited") => amount,
                Some("com.example.withdrawn") => -amount,
                _ => 0,
            }
        })
        .sum()
}

/// Reads every page of the account's events: (events, as_of).
async fn read_account(api: &str, db: &str, selector: &Value) -> Result<(Vec<Value>, u64), String> {
    let path = format!("/databases/{db}/query");
    let (mut events, mut from) = (Vec::new(), Some(1));
    let mut as_of = 0;
    while let Some(f) = from {
        let r = call(
            api,
            "POST",
            &path,
            Some(&json!({"selector": selector, "from": f})),
        )
        .await?;
        let page = r.json();
        if r.status != 200 {
            return Err(format!("query answered {}: {}", r.status, r.text()));
        }
        events.extend(page["events"].as_array().cloned().unwrap_or_default());
        as_of = page["as_of"].as_u64().unwrap_or(0);
        from = page["next_from"].as_u64();
    }
    Ok((events, as_of))
}

/// Withdraws `amount` on condition that nothing matching `selector` was
/// appended after `as_of`.
fn withdraw(id: &str, amount: i64, selector: &Value, as_of: u64) -> Value {
    json!({
        "transaction_id": id,
        "events": [event(id, "com.example.withdrawn", json!({"amount": amount}))],
        "conditions": [{"selector": selector, "max": as_of}],
    })
}

/// Read → decide → append, with another client's append in between.
pub(super) async fn read_decide_append(
    api: &str,
    db: &str,
    verdict: &mut Verdict,
    batches: &mut Vec<Batch>,
) -> Result<(), String> {
    let selector = json!({"subject_equals": "account-42"});
    let path = format!("/databases/{db}/transactions");
    println!("   Read what the decision depends on: account 42's events, with as_of.");
    let (events, as_of) = read_account(api, db, &selector).await?;
    let funds = balance(&events);
    verdict.check(
        (events.len(), as_of, funds) == (4, 4, 120),
        "4 events up to as_of 4: balance 120",
    );

    println!("   Meanwhile another client withdraws 50 (revision 5).");
    let other = json!({
        "transaction_id": "teller-withdraw-50",
        "events": [event("e-teller", "com.example.withdrawn", json!({"amount": 50}))],
    });
    let r = call(api, "POST", &path, Some(&other)).await?;
    verdict.check(r.status == 200, "200: the other client's withdrawal");
    batches.extend(batch_of(&r.json()));

    println!(
        "   Decide on the balance read (120 covers 100) and append on condition that account \
         42 has no event after as_of {as_of}: Max(selector, {as_of})."
    );
    let r = call(
        api,
        "POST",
        &path,
        Some(&withdraw("e-6", 100, &selector, as_of)),
    )
    .await?;
    verdict.check(
        r.status == 409 && r.json()["code"] == "FAILED_PRECONDITION",
        "409 FAILED_PRECONDITION: the account changed after what was read; nothing written",
    );

    println!("   Read again, decide again: the balance is now 70.");
    let (events, as_of) = read_account(api, db, &selector).await?;
    let funds = balance(&events);
    verdict.check((as_of, funds) == (5, 70), "as_of 5: balance 70");
    let r = call(
        api,
        "POST",
        &path,
        Some(&withdraw("e-7", funds, &selector, as_of)),
    )
    .await?;
    let done = batch_of(&r.json());
    verdict.check(
        r.status == 200
            && done
                .as_ref()
                .is_some_and(|b| (b.basis, b.revision) == (5, 6)),
        "200: withdrew 70 at revision 6",
    );
    batches.extend(done);
    Ok(())
}
