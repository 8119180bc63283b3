//! Admin clients whose main queue is served.
//!
//! rdkafka's `AdminClient` polls only the queue its own requests answer on.
//! librdkafka puts everything else on the client's main queue: the
//! OAUTHBEARER token request (so with `AWS_MSK_IAM` an admin client never
//! gets a token and never authenticates), broker errors (so a refusal is
//! never seen) and log lines. [`ServedAdmin`] serves that queue on a thread
//! of its own, handing each event to the shared [`KafkaContext`] as
//! rdkafka does for producers and consumers, for as long as the client
//! lives.

use std::{
    ffi::{CStr, CString},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use rdkafka::{
    ClientContext,
    admin::AdminClient,
    bindings as rd,
    config::{FromClientConfigAndContext, RDKafkaLogLevel},
    error::{KafkaError, KafkaResult},
};

use crate::{KafkaContext, KafkaSettings};

/// An admin client for `settings`, with its main queue served.
pub struct ServedAdmin {
    // Declared first: dropped (stopped and joined) before the client.
    _server: QueueServer,
    client: Arc<AdminClient<KafkaContext>>,
}

impl ServedAdmin {
    pub fn new(settings: &KafkaSettings, context: KafkaContext) -> KafkaResult<Self> {
        let client = Arc::new(AdminClient::from_config_and_context(
            &settings.client_config(),
            context.clone(),
        )?);
        let server = QueueServer::start(client.clone(), context)?;
        Ok(ServedAdmin {
            _server: server,
            client,
        })
    }

    pub fn client(&self) -> &AdminClient<KafkaContext> {
        &self.client
    }
}

struct QueueServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl QueueServer {
    fn start(client: Arc<AdminClient<KafkaContext>>, context: KafkaContext) -> KafkaResult<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kafka admin main queue".into())
            .spawn(move || {
                let rk = client.inner().native_ptr();
                // SAFETY: `rk` is alive while `client` (owned by this thread
                // until it ends) is; the queue reference is released below.
                let queue = unsafe { rd::rd_kafka_queue_get_main(rk) };
                while !stopping.load(Ordering::Relaxed) {
                    // SAFETY: a queue of a live client; 100 ms at most.
                    let event = unsafe { rd::rd_kafka_queue_poll(queue, 100) };
                    if event.is_null() {
                        continue;
                    }
                    // SAFETY: a non-null event from the poll, destroyed once.
                    unsafe {
                        serve(rk, event, &context);
                        rd::rd_kafka_event_destroy(event);
                    }
                }
                // SAFETY: the reference taken above.
                unsafe { rd::rd_kafka_queue_destroy(queue) };
            })
            .map_err(|e| KafkaError::ClientCreation(e.to_string()))?;
        Ok(QueueServer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for QueueServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One main-queue event, as rdkafka serves it for its own clients.
///
/// # Safety
/// `rk` is a live client and `event` a live event of its main queue.
unsafe fn serve(rk: *mut rd::rd_kafka_t, event: *mut rd::rd_kafka_event_t, context: &KafkaContext) {
    // SAFETY (whole body): the caller's guarantee; strings librdkafka
    // returns live as long as the event.
    unsafe {
        match rd::rd_kafka_event_type(event) {
            rd::RD_KAFKA_EVENT_OAUTHBEARER_TOKEN_REFRESH => {
                let mut errstr = [0 as std::ffi::c_char; 512];
                let set = context
                    .generate_oauth_token(None)
                    .map_err(|e| e.to_string())
                    .and_then(|token| {
                        let value = CString::new(token.token).map_err(|e| e.to_string())?;
                        let principal =
                            CString::new(token.principal_name).map_err(|e| e.to_string())?;
                        let code = rd::rd_kafka_oauthbearer_set_token(
                            rk,
                            value.as_ptr(),
                            token.lifetime_ms,
                            principal.as_ptr(),
                            std::ptr::null_mut(),
                            0,
                            errstr.as_mut_ptr(),
                            errstr.len(),
                        );
                        if code == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                            Ok(())
                        } else {
                            Err(CStr::from_ptr(errstr.as_ptr())
                                .to_string_lossy()
                                .into_owned())
                        }
                    });
                if let Err(reason) = set {
                    let reason = CString::new(reason).unwrap_or_default();
                    rd::rd_kafka_oauthbearer_set_token_failure(rk, reason.as_ptr());
                }
            }
            rd::RD_KAFKA_EVENT_ERROR => {
                let code = rd::rd_kafka_event_error(event);
                let text = rd::rd_kafka_event_error_string(event);
                let reason = if text.is_null() {
                    std::borrow::Cow::Borrowed("")
                } else {
                    CStr::from_ptr(text).to_string_lossy()
                };
                context.error(KafkaError::Global(code.into()), reason.trim());
            }
            rd::RD_KAFKA_EVENT_LOG => {
                let (mut facility, mut message, mut level) =
                    (std::ptr::null(), std::ptr::null(), 0);
                if rd::rd_kafka_event_log(event, &mut facility, &mut message, &mut level) == 0 {
                    context.log(
                        log_level(level),
                        &CStr::from_ptr(facility).to_string_lossy(),
                        &CStr::from_ptr(message).to_string_lossy(),
                    );
                }
            }
            _ => {}
        }
    }
}

/// librdkafka's syslog levels as rdkafka's.
fn log_level(level: i32) -> RDKafkaLogLevel {
    match level {
        0 => RDKafkaLogLevel::Emerg,
        1 => RDKafkaLogLevel::Alert,
        2 => RDKafkaLogLevel::Critical,
        3 => RDKafkaLogLevel::Error,
        4 => RDKafkaLogLevel::Warning,
        5 => RDKafkaLogLevel::Notice,
        6 => RDKafkaLogLevel::Info,
        _ => RDKafkaLogLevel::Debug,
    }
}
