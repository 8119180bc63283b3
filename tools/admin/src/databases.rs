//! `databases list` and `databases describe NAME`: what the table's head
//! items say, printed as a table or as key/value lines (or JSON).

use evidentsource_database_events::{format_time, to_datetime};
use evidentsource_storage::{HeadItem, Store, StoreError, timestamp_from_millis};
use serde::Serialize;

/// One database as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseRow {
    pub name: String,
    /// `active` or `deleted` (a tombstone until its TTL removes it).
    pub state: &'static str,
    pub incarnation: String,
    pub revision: u64,
    /// RFC 3339 with milliseconds, as `ce_time`.
    pub created_at: String,
    pub revision_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// The last revision the condition index holds (`describe` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_watermark: Option<u64>,
}

fn time(ms: i64) -> String {
    to_datetime(&timestamp_from_millis(ms))
        .map(|t| format_time(&t))
        .unwrap_or_else(|| ms.to_string())
}

impl DatabaseRow {
    pub fn of(head: &HeadItem, index_watermark: Option<u64>) -> Self {
        DatabaseRow {
            name: head.name.clone(),
            state: head.state.as_str(),
            incarnation: head.incarnation.clone(),
            revision: head.revision,
            created_at: time(head.created_at),
            revision_time: time(head.revision_time),
            deleted_at: head.deleted_at.map(time),
            index_watermark,
        }
    }
}

/// Every database in the table (tombstones too), by name.
pub async fn list(store: &Store) -> Result<Vec<DatabaseRow>, StoreError> {
    Ok(store
        .list_heads()
        .await?
        .iter()
        .map(|h| DatabaseRow::of(h, None))
        .collect())
}

/// One database with its index watermark (the same strongly consistent
/// query as the head); `None` when the name has no head item.
pub async fn describe(store: &Store, name: &str) -> Result<Option<DatabaseRow>, StoreError> {
    Ok(store
        .head_and_watermark(name)
        .await?
        .map(|at| DatabaseRow::of(&at.head, Some(at.watermark))))
}

/// The rows as a table with a header line, columns padded to fit.
pub fn table(rows: &[DatabaseRow]) -> String {
    let header = ["NAME", "STATE", "INCARNATION", "REVISION", "CREATED"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.state.to_owned(),
                r.incarnation.clone(),
                r.revision.to_string(),
                r.created_at.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[&str]| {
        let mut out = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&header);
    for row in &cells {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    out
}

/// One database as `key: value` lines.
pub fn details(row: &DatabaseRow) -> String {
    let mut out = format!(
        "name:            {}\nstate:           {}\nincarnation:     {}\nrevision:        {}\n\
         created at:      {}\nrevision time:   {}\n",
        row.name, row.state, row.incarnation, row.revision, row.created_at, row.revision_time
    );
    if let Some(at) = &row.deleted_at {
        out.push_str(&format!("deleted at:      {at}\n"));
    }
    if let Some(w) = row.index_watermark {
        out.push_str(&format!("index watermark: {w}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use evidentsource_storage::HeadState;

    use super::*;

    fn head(name: &str, revision: u64, deleted: bool) -> HeadItem {
        let mut h = HeadItem::new(name, "00ff".into(), 1_705_314_600_123);
        h.revision = revision;
        h.revision_time = 1_705_314_605_456;
        if deleted {
            h.state = HeadState::Deleted;
            h.deleted_at = Some(1_705_314_700_000);
        }
        h
    }

    #[test]
    fn rows_print_as_a_table_and_as_details() {
        let rows = [
            DatabaseRow::of(&head("accounts", 42, false), None),
            DatabaseRow::of(&head("a-much-longer-name", 0, true), None),
        ];
        assert_eq!(
            table(&rows),
            "NAME                STATE    INCARNATION  REVISION  CREATED\n\
             accounts            active   00ff         42        2024-01-15T10:30:00.123Z\n\
             a-much-longer-name  deleted  00ff         0         2024-01-15T10:30:00.123Z\n"
        );
        assert_eq!(table(&[]), "NAME  STATE  INCARNATION  REVISION  CREATED\n");
        let described = DatabaseRow::of(&head("accounts", 42, true), Some(40));
        assert_eq!(
            details(&described),
            "name:            accounts\nstate:           deleted\nincarnation:     00ff\n\
             revision:        42\ncreated at:      2024-01-15T10:30:00.123Z\n\
             revision time:   2024-01-15T10:30:05.456Z\n\
             deleted at:      2024-01-15T10:31:40.000Z\nindex watermark: 40\n"
        );
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(json["revision"], 42);
        assert_eq!(json["state"], "active");
        assert!(json.get("deleted_at").is_none() && json.get("index_watermark").is_none());
    }
}
