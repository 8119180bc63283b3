//! The condition index (docs/design/dcb-index.md): what a selector can
//! match, kept in DynamoDB so that a condition or a query reads what
//! matches and never the history. Keys are the schema's
//! (`evidentsource_table_schema::index`).
//!
//! - [`posting`]: the posting pieces (events of one commit sharing one
//!   subject, type or stream) and the three-valued check of a selector on
//!   what a piece keeps of an event.

pub mod posting;
