//! How busy moto was: `scripts/moto_server.py` handles one request at a
//! time and answers `GET /_moto_server/busy` with the nanoseconds it has
//! spent handling requests (inside its lock). Over a window, busy time /
//! wall time tells a run that moto's queue limits from one its clients
//! limit (`make bench`, "Contention").

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

/// At or under this busy share moto was idle at least half the time: what
/// held the writers back was not its queue. (HTTP is parsed and answered
/// outside the lock, so even a run that saturates it shows about 90 %.)
pub const IDLE_HALF_THE_TIME: f64 = 0.5;

/// Nanoseconds moto has spent handling requests since it started; `None`
/// if the endpoint does not answer it (not this project's moto launcher).
pub fn moto_busy(endpoint: &str) -> Option<u64> {
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let address = authority.to_socket_addrs().ok()?.next()?;
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "GET /_moto_server/busy HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // A figure is a few bytes: whatever else answers is not read past 4 KB.
    let mut response = String::new();
    stream.take(4096).read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return None;
    }
    body.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use evidentsource_local_servers::{dynamodb_client, shared};

    use super::*;

    /// The busy time only grows, and by what a request took moto.
    #[tokio::test]
    async fn moto_tells_how_long_it_was_busy() {
        let endpoint = &shared().dynamodb_endpoint;
        let before = moto_busy(endpoint).expect("moto answers how long it was busy");
        dynamodb_client(endpoint)
            .list_tables()
            .send()
            .await
            .expect("list tables");
        let after = moto_busy(endpoint).expect("moto answers how long it was busy");
        assert!(after > before, "{before} ns, then {after} ns");
        // Not a DynamoDB endpoint that answers the path: no figure.
        assert_eq!(moto_busy("127.0.0.1:1"), None);
    }
}
