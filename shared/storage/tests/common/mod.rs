#![allow(dead_code)]

pub mod history;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use aws_sdk_dynamodb::config::{
    ConfigBag, Intercept, RuntimeComponents,
    interceptors::BeforeDeserializationInterceptorContextRef,
};
use evidentsource_domain::{DatabaseName, Limits, Transaction};
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};
use evidentsource_proto::{
    AppendCondition, TransactRequest,
    cloudevents::{
        CloudEvent,
        cloud_event::{CloudEventAttributeValue, Data, cloud_event_attribute_value::Attr},
    },
};
use evidentsource_storage::{Store, StoreConfig, table::create_table};

/// A store on a fresh table in moto.
pub async fn store() -> Store {
    store_with(|_| {}).await
}

/// A store on a fresh table in moto, with adjusted settings.
pub async fn store_with(adjust: impl FnOnce(&mut StoreConfig)) -> Store {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("table");
    create_table(&client, &table).await.unwrap();
    let mut config = StoreConfig::new(table);
    adjust(&mut config);
    Store::new(client, config)
}

/// A second store (another "process": no shared cache) on the same table,
/// whose client fails after the `fail_after`-th DynamoDB call has reached
/// the server and been answered.
pub fn store_failing_after(table: &str, fail_after: usize) -> (Store, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let base = dynamodb_client(&shared().dynamodb_endpoint);
    let config = base
        .config()
        .to_builder()
        .interceptor(FailAfter {
            calls: calls.clone(),
            fail_after,
        })
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    (Store::new(client, StoreConfig::new(table)), calls)
}

#[derive(Debug)]
struct FailAfter {
    calls: Arc<AtomicUsize>,
    fail_after: usize,
}

impl Intercept for FailAfter {
    fn name(&self) -> &'static str {
        "FailAfter"
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_after {
            Err("injected crash after the call completed".into())
        } else {
            Ok(())
        }
    }
}

pub fn db(name: &str) -> DatabaseName {
    DatabaseName::parse(name).unwrap()
}

pub fn new_db() -> DatabaseName {
    db(&unique_name("db"))
}

pub fn event(
    id: &str,
    stream: &str,
    subject: Option<&str>,
    ty: &str,
    data_len: usize,
) -> CloudEvent {
    let mut attributes = std::collections::BTreeMap::new();
    if let Some(s) = subject {
        attributes.insert(
            "subject".to_string(),
            CloudEventAttributeValue {
                attr: Some(Attr::CeString(s.into())),
            },
        );
    }
    CloudEvent {
        id: id.into(),
        source: format!("https://example.com/shop/{stream}"),
        spec_version: "1.0".into(),
        r#type: ty.into(),
        attributes,
        data: Some(Data::BinaryData(filler(id, data_len))),
    }
}

/// A JSON-like payload with random ids and amounts, about as compressible
/// as real event data.
pub fn filler(seed: &str, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 96);
    out.push(b'[');
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "{{\"sku\":\"{:016x}\",\"qty\":{},\"price\":{}.{:02}}},",
                rng.next(),
                rng.next() % 20,
                rng.next() % 5000,
                rng.next() % 100
            )
            .as_bytes(),
        );
    }
    out.truncate(len);
    out
}

/// Incompressible bytes: the worst case for packed storage.
pub fn random_bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// xorshift64*, seeded from a string: deterministic test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: &str) -> Self {
        Rng(seed.bytes().fold(0x9E37_79B9_7F4A_7C15, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
        }) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub fn tx(
    database: &DatabaseName,
    events: Vec<CloudEvent>,
    conditions: Vec<AppendCondition>,
    transaction_id: &str,
) -> Transaction {
    Transaction::from_request(
        TransactRequest {
            database_name: database.to_string(),
            events,
            conditions,
            transaction_id: transaction_id.into(),
        },
        &Limits::default(),
    )
    .unwrap()
}

/// A second store on the same table whose `TransactWriteItems` calls never
/// reach the table: a local stub answers each with a
/// `TransactionCanceledException` giving `reasons` (e.g. `ThrottlingError`),
/// which moto, serializing every request, never produces. Other calls go to
/// moto as usual.
pub fn store_cancelling_transactions(table: &str, reasons: &[&str], max_attempts: u32) -> Store {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stub = format!("http://{}", listener.local_addr().unwrap());
    let reasons: Vec<String> = reasons
        .iter()
        .map(|r| format!(r#"{{"Code":"{r}","Message":"injected"}}"#))
        .collect();
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled (injected)","CancellationReasons":[{}]}}"#,
        reasons.join(",")
    );
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request = vec![0; length];
            let _ = reader.read_exact(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let base = dynamodb_client(&shared().dynamodb_endpoint);
    let config = base
        .config()
        .to_builder()
        .interceptor(RedirectTransactions { to: stub })
        .build();
    let mut store_config = StoreConfig::new(table);
    store_config.max_attempts = max_attempts;
    Store::new(aws_sdk_dynamodb::Client::from_conf(config), store_config)
}

#[derive(Debug)]
struct RedirectTransactions {
    to: String,
}

impl Intercept for RedirectTransactions {
    fn name(&self) -> &'static str {
        "RedirectTransactions"
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut<
            '_,
        >,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request_mut();
        let is_transaction = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with(".TransactWriteItems"));
        if is_transaction {
            request.set_uri(format!("{}/", self.to))?;
        }
        Ok(())
    }
}
