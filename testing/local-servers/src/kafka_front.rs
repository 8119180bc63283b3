//! A TLS and SASL front for a plaintext Kafka broker (tansu), so that tests
//! make real TLS and SASL handshakes with librdkafka.
//!
//! Why a front: tansu 0.6 as shipped keeps its listener plaintext whatever
//! `--cert`/`--key` say and cannot authenticate SCRAM users (see sasl.rs).
//! The front listens on 127.0.0.1, and tansu advertises the front's address
//! (`--advertised-listener-url`), so metadata sends clients back through it.
//!
//! Per connection: TLS (if configured), then, if SASL is required, the
//! pre-authentication exchange a Kafka broker has: ApiVersions (answered by
//! tansu, which lists SaslHandshake v0-1 and SaslAuthenticate), then
//! SaslHandshake v1 and SaslAuthenticate v0-1 (answered here, as librdkafka
//! sends them), and any other request before a login closes the connection,
//! as Kafka does. After the login, bytes are copied both ways untouched.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig};

use crate::sasl::{Login, MECHANISMS, Step, failure_message};

const API_VERSIONS: i16 = 18;
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// Frames before a login are small; a larger one is not a Kafka client.
const MAX_PREAUTH_FRAME: usize = 1 << 20;

/// User name → password, shared with the test that may add users.
pub type Users = Arc<Mutex<Vec<(String, String)>>>;

/// What the front requires of clients.
#[derive(Clone)]
pub struct FrontConfig {
    pub tls: Option<Arc<ServerConfig>>,
    /// `Some`: SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) is required.
    pub users: Option<Users>,
    pub upstream: SocketAddr,
}

/// Accepts connections until the listener's runtime stops.
pub async fn serve(listener: TcpListener, config: FrontConfig) {
    let acceptor = config.tls.clone().map(TlsAcceptor::from);
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let config = config.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // A failed handshake or login just ends that connection; the
            // client reports why.
            let _ = match acceptor {
                Some(acceptor) => match acceptor.accept(socket).await {
                    Ok(tls) => connection(tls, &config).await,
                    Err(e) => Err(e),
                },
                None => connection(socket, &config).await,
            };
        });
    }
}

async fn connection<S>(mut client: S, config: &FrontConfig) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut upstream = TcpStream::connect(config.upstream).await?;
    if let Some(users) = &config.users
        && !login(&mut client, &mut upstream, users).await?
    {
        client.shutdown().await?;
        return Ok(());
    }
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// The request header fields the front needs (header v1: key, version,
/// correlation id, client id), and where the body starts.
struct Header {
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    body: usize,
}

fn parse_header(frame: &[u8]) -> Option<Header> {
    let i16_at = |at: usize| Some(i16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?));
    let api_key = i16_at(0)?;
    let api_version = i16_at(2)?;
    let correlation_id = i32::from_be_bytes(frame.get(4..8)?.try_into().ok()?);
    let client_id_len = i16_at(8)?;
    let body = 10 + usize::try_from(client_id_len.max(0)).ok()?;
    (body <= frame.len()).then_some(Header {
        api_key,
        api_version,
        correlation_id,
        body,
    })
}

/// Runs the pre-authentication exchange; `true` once logged in.
async fn login<S>(client: &mut S, upstream: &mut TcpStream, users: &Users) -> io::Result<bool>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let lookup = |name: &str| {
        let users = users.lock().unwrap_or_else(|e| e.into_inner());
        users
            .iter()
            .find(|(u, _)| u == name)
            .map(|(_, p)| p.clone())
    };
    let mut session: Option<Login<'_>> = None;
    loop {
        let frame = read_frame(client, MAX_PREAUTH_FRAME).await?;
        let Some(header) = parse_header(&frame) else {
            return Ok(false);
        };
        let body = &frame[header.body..];
        let mut out = header.correlation_id.to_be_bytes().to_vec();
        match (header.api_key, header.api_version) {
            (API_VERSIONS, _) => {
                write_frame(upstream, &frame).await?;
                let answer = read_frame(upstream, MAX_PREAUTH_FRAME).await?;
                write_frame(client, &answer).await?;
                continue;
            }
            // v1 only: with v0 the tokens would follow as raw frames, which
            // librdkafka does not send to a broker listing v1.
            (SASL_HANDSHAKE, 1) => {
                let mechanism = read_string(body).unwrap_or_default();
                session = Login::new(&mechanism, lookup);
                let error = if session.is_some() {
                    0
                } else {
                    UNSUPPORTED_SASL_MECHANISM
                };
                out.extend_from_slice(&error.to_be_bytes());
                out.extend_from_slice(&(MECHANISMS.len() as i32).to_be_bytes());
                for m in MECHANISMS {
                    put_string(&mut out, Some(m));
                }
                write_frame(client, &out).await?;
                if session.is_none() {
                    return Ok(false);
                }
            }
            (SASL_AUTHENTICATE, version @ (0 | 1)) => {
                let token = read_bytes(body).unwrap_or_default();
                let (error, message, reply, outcome) = match session.as_mut() {
                    None => (
                        ILLEGAL_SASL_STATE,
                        Some("SaslAuthenticate before SaslHandshake".to_owned()),
                        Vec::new(),
                        Some(false),
                    ),
                    Some(login) => match login.step(&token) {
                        Step::Continue(reply) => (0, None, reply, None),
                        Step::Done { reply, .. } => (0, None, reply, Some(true)),
                        Step::Failed => (
                            SASL_AUTHENTICATION_FAILED,
                            Some(failure_message(login.mechanism())),
                            Vec::new(),
                            Some(false),
                        ),
                    },
                };
                out.extend_from_slice(&error.to_be_bytes());
                put_string(&mut out, message.as_deref());
                out.extend_from_slice(&(reply.len() as i32).to_be_bytes());
                out.extend_from_slice(&reply);
                if version >= 1 {
                    // session_lifetime_ms: 0, no re-authentication.
                    out.extend_from_slice(&0i64.to_be_bytes());
                }
                write_frame(client, &out).await?;
                if let Some(logged_in) = outcome {
                    return Ok(logged_in);
                }
            }
            // Anything else before a login: Kafka closes the connection.
            _ => return Ok(false),
        }
    }
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S, max: usize) -> io::Result<Vec<u8>> {
    let len = stream.read_i32().await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad Kafka frame size"))?;
    let mut frame = vec![0; len];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, frame: &[u8]) -> io::Result<()> {
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(frame);
    stream.write_all(&out).await?;
    stream.flush().await
}

/// A Kafka STRING (i16 length).
fn read_string(body: &[u8]) -> Option<String> {
    let len = usize::try_from(i16::from_be_bytes(body.get(..2)?.try_into().ok()?)).ok()?;
    String::from_utf8(body.get(2..2 + len)?.to_vec()).ok()
}

/// Kafka BYTES (i32 length).
fn read_bytes(body: &[u8]) -> Option<Vec<u8>> {
    let len = usize::try_from(i32::from_be_bytes(body.get(..4)?.try_into().ok()?)).ok()?;
    Some(body.get(4..4 + len)?.to_vec())
}

/// A Kafka NULLABLE_STRING.
fn put_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
        Some(s) => {
            out.extend_from_slice(&(s.len() as i16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}
