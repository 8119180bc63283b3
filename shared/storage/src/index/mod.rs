//! The condition index (docs/storage.md, "The condition index"): what a selector can
//! match, kept in DynamoDB so that a condition or a query reads what
//! matches and never the history. Keys are the schema's
//! (`evidentsource_table_schema::index`).
//!
//! - [`posting`]: the posting pieces (events of one commit sharing one
//!   subject, type or stream) and the three-valued check of a selector on
//!   what a piece keeps of an event.

//! - [`build`]: the items one chunk's events add to the index;
//! - [`writer`]: the indexer's work, chunks past the watermark into items,
//!   then the watermark;
//! - [`plan`]: which ranges of the index a selector can match;
//! - [`read`]: the head with its watermark, posting pages;
//! - [`eval`]: the highest revision matching a selector at a basis, from
//!   the index and the chunks past its watermark;
//! - [`query`]: the events matching a selector, in pages (the DCB read),
//!   through [`cursor`]s over the index and the chunks past its watermark.

pub mod build;
pub(crate) mod cursor;
pub mod eval;
pub mod plan;
pub mod posting;
pub mod query;
pub mod read;
pub mod writer;

/// What the index's property tests share.
#[cfg(test)]
pub(crate) mod strategies {
    use evidentsource_domain::Selector;
    use proptest::prelude::*;

    /// Selectors of every shape (leaves of the six kinds over values drawn
    /// by `text`; `and` / `or` of `parts` children, nested).
    pub fn selector(
        text: BoxedStrategy<String>,
        parts: std::ops::Range<usize>,
    ) -> impl Strategy<Value = Selector> {
        let leaf = prop_oneof![
            text.clone().prop_map(Selector::StreamEquals),
            text.clone().prop_map(Selector::StreamStartsWith),
            text.clone().prop_map(Selector::SubjectEquals),
            text.clone().prop_map(Selector::SubjectStartsWith),
            text.clone().prop_map(Selector::EventTypeEquals),
            text.prop_map(Selector::EventTypeStartsWith),
        ];
        leaf.prop_recursive(4, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), parts.clone()).prop_map(Selector::And),
                prop::collection::vec(inner, parts.clone()).prop_map(Selector::Or),
            ]
        })
    }
}
