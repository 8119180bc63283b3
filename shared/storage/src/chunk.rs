//! Events are stored packed: a transaction's events go into as few chunk
//! items as fit under DynamoDB's 400 KB item limit, each a zstd-compressed
//! protobuf list of CloudEvents (the CloudEvents protobuf format). Packing
//! is what keeps a transaction's write cost well under one item per event.

use evidentsource_proto::cloudevents::CloudEvent;
use prost::Message;

/// Uncompressed payload bound per chunk. Events are at most 256 KiB each
/// (domain limit), so any event fits; with keys and attributes the item
/// stays far below 400 KB even if the data does not compress.
pub(crate) const CHUNK_PAYLOAD_BYTES: usize = 300 * 1024;
const ZSTD_LEVEL: i32 = 3;

#[derive(Clone, PartialEq, Message)]
struct StoredChunk {
    #[prost(message, repeated, tag = "1")]
    events: Vec<CloudEvent>,
}

/// A chunk ready to write: its first revision's offset in the transaction,
/// how many events it holds, and the compressed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedChunk {
    pub offset: usize,
    pub count: usize,
    pub payload: Vec<u8>,
}

/// Splits `events` (in order) into chunks and compresses each.
pub fn pack_events(events: &[CloudEvent]) -> Vec<PackedChunk> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in events.iter().enumerate() {
        let len = e.encoded_len() + 4; // field tag and length prefix
        if i > start && bytes + len > CHUNK_PAYLOAD_BYTES {
            chunks.push(compress(start, &events[start..i]));
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < events.len() {
        chunks.push(compress(start, &events[start..]));
    }
    chunks
}

fn compress(offset: usize, events: &[CloudEvent]) -> PackedChunk {
    let raw = StoredChunk {
        events: events.to_vec(),
    }
    .encode_to_vec();
    // Compressing an in-memory buffer only fails on allocation failure.
    let payload = zstd::bulk::compress(&raw, ZSTD_LEVEL).expect("zstd compression of a buffer");
    PackedChunk {
        offset,
        count: events.len(),
        payload,
    }
}

/// Decompresses and decodes a chunk written by [`pack_events`].
pub(crate) fn unpack(payload: &[u8], expected: usize) -> Result<Vec<CloudEvent>, String> {
    // The bound guards against a corrupt header claiming a huge size.
    let raw = zstd::bulk::decompress(payload, 2 * CHUNK_PAYLOAD_BYTES + 64 * 1024)
        .map_err(|e| format!("chunk does not decompress: {e}"))?;
    let chunk =
        StoredChunk::decode(raw.as_slice()).map_err(|e| format!("chunk does not decode: {e}"))?;
    if chunk.events.len() != expected {
        return Err(format!(
            "chunk holds {} events, its item says {expected}",
            chunk.events.len()
        ));
    }
    Ok(chunk.events)
}

#[cfg(test)]
mod tests {
    use evidentsource_proto::cloudevents::cloud_event::Data;

    use super::*;

    fn event(i: usize, data: usize) -> CloudEvent {
        CloudEvent {
            id: format!("e{i}"),
            source: "https://example.com/orders".into(),
            spec_version: "1.0".into(),
            r#type: "com.example.placed".into(),
            attributes: Default::default(),
            data: Some(Data::BinaryData(vec![(i % 251) as u8; data])),
        }
    }

    #[test]
    fn small_transactions_fit_one_chunk() {
        let events: Vec<_> = (0..100).map(|i| event(i, 200)).collect();
        let chunks = pack_events(&events);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].count, 100);
        assert_eq!(unpack(&chunks[0].payload, 100).unwrap(), events);
    }

    #[test]
    fn large_transactions_split_in_order() {
        let events: Vec<_> = (0..8).map(|i| event(i, 128 * 1024)).collect();
        let chunks = pack_events(&events);
        assert!(chunks.len() >= 4, "{}", chunks.len());
        let mut all = Vec::new();
        let mut next = 0;
        for c in &chunks {
            assert_eq!(c.offset, next);
            next += c.count;
            all.extend(unpack(&c.payload, c.count).unwrap());
        }
        assert_eq!(all, events);
    }

    #[test]
    fn corrupt_chunks_are_errors() {
        assert!(unpack(b"not zstd", 1).is_err());
        let chunks = pack_events(&[event(0, 10)]);
        assert!(
            unpack(&chunks[0].payload, 2)
                .unwrap_err()
                .contains("holds 1")
        );
    }
}
