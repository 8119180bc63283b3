//! The condition index (docs/design/dcb-index.md): what a selector can
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
//! - [`eval`]: the highest revision matching a selector at a basis, from
//!   the index and the chunks past its watermark.

pub mod build;
pub mod eval;
pub mod plan;
pub mod posting;
pub mod writer;
