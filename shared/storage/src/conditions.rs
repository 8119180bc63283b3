//! Append conditions, evaluated against this process's condition index
//! (`crate::facts`): folding in the chunks committed since it last looked,
//! and its own commits as they succeed.

use evidentsource_domain::{AppendCondition, ConditionCheck, OwnedFacts, Transaction, evaluate};

use crate::{Store, StoreError, facts::MAX_TRIPLES, head::HeadItem, plan::CommitPlanSummary};

pub(crate) enum Evaluation {
    Checked(ConditionCheck),
    /// This process has already seen a newer revision than the head read:
    /// the head is stale.
    Stale,
}

impl Store {
    /// Evaluates conditions as of the head's revision, reading only the
    /// chunks this process has not folded into its condition index yet.
    pub(crate) async fn evaluate(
        &self,
        head: &HeadItem,
        conditions: &[AppendCondition],
        cost: &mut CommitPlanSummary,
    ) -> Result<Evaluation, StoreError> {
        let entry = self.facts.entry(&head.name, &head.incarnation);
        let mut facts = entry.lock().await;
        if facts.scanned_to > head.revision {
            return Ok(Evaluation::Stale);
        }
        if facts.scanned_to < head.revision {
            let from = facts.scanned_to + 1;
            let (chunks, round_trips) = self.query_chunks(head, from, head.revision).await?;
            cost.read_round_trips += round_trips;
            for (first, events) in chunks {
                for (i, event) in events.iter().enumerate() {
                    let f = OwnedFacts::of(event).ok_or_else(|| {
                        StoreError::Fault(format!(
                            "stored event {} has no stream",
                            first + i as u64
                        ))
                    })?;
                    facts.add(f, first + i as u64);
                }
            }
            facts.scanned_to = head.revision;
        }
        let check = evaluate(
            conditions,
            facts.highest.iter().map(|(f, r)| (*r, f.as_facts())),
        );
        if facts.highest.len() > MAX_TRIPLES {
            drop(facts);
            self.facts.forget(&head.name, &head.incarnation);
        }
        Ok(Evaluation::Checked(check))
    }

    /// Keeps the condition index warm with our own commit, if nothing else
    /// got in between.
    pub(crate) async fn fold_in_own_events(&self, head: &HeadItem, tx: &Transaction, basis: u64) {
        let entry = self.facts.entry(&head.name, &head.incarnation);
        let mut facts = entry.lock().await;
        if facts.scanned_to == basis {
            for (i, f) in tx.facts.iter().enumerate() {
                facts.add(f.clone(), basis + 1 + i as u64);
            }
            facts.scanned_to = basis + tx.events.len() as u64;
        }
    }
}
