//! The host-wide connection cap over real TCP on loopback: at the cap the
//! longest-idle connection gives way to a new one, a connection with a
//! request in flight never does (when none is idle the new one is refused),
//! and the health probe keeps answering.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestHost;
use crate::support::{scrape, value};

/// How long a read may hang before the test gives up: a guard against a
/// hung test, not a measure of speed.
const PATIENCE: Duration = Duration::from_secs(30);

const ADMIN_TOKEN: &str = "connections-test-admin-token";

async fn connect(host: &TestHost) -> TcpStream {
    TcpStream::connect(host.addr()).await.unwrap()
}

/// Reads until `want` has arrived (true) or the host closed the
/// connection (false).
async fn read_until(stream: &mut TcpStream, want: &str) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if String::from_utf8_lossy(&seen).contains(want) {
            return true;
        }
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the host neither answered nor closed the connection")
        {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether the host has closed the connection (everything it still sends
/// before closing is read and ignored).
async fn closed_by_host(stream: &mut TcpStream) -> bool {
    !read_until(stream, "\u{0}never sent\u{0}").await
}

/// Sends a keep-alive health probe and reads its answer; the connection
/// stays open and idle.
async fn probe(stream: &mut TcpStream) -> bool {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: onething\r\n\r\n")
        .await
        .is_ok()
        && read_until(stream, "{\"status\":\"ok\"}").await
}

/// Starts an upload whose body has not been sent: the host's handler is
/// waiting for it once `100 Continue` arrives, so the request is in flight.
async fn start_upload(host: &TestHost) -> TcpStream {
    let mut stream = connect(host).await;
    let head = format!(
        "POST /v1/admin/plugins HTTP/1.1\r\nhost: onething\r\nauthorization: Bearer {ADMIN_TOKEN}\r\n\
         content-length: 4\r\nexpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    assert!(
        read_until(&mut stream, "100 Continue").await,
        "the upload was not taken"
    );
    stream
}

async fn metric(host: &TestHost, series: &str) -> f64 {
    value(&scrape(host).await, series)
}

/// A health probe from a new client (the test's HTTP client).
async fn healthz(host: &TestHost) -> StatusCode {
    host.client
        .get(format!("{}/healthz", host.base))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn twice_the_cap_in_idle_connections_and_the_health_probe_still_answers() {
    const CAP: usize = 16;
    let host = TestHost::start_with(&[], |config| config.limits.max_connections = CAP).await;

    // Half have asked once and stay open; half connect and send nothing.
    let mut kept_alive = Vec::new();
    for _ in 0..CAP {
        let mut stream = connect(&host).await;
        assert!(probe(&mut stream).await);
        kept_alive.push(stream);
    }
    let mut silent = Vec::new();
    for _ in 0..CAP {
        silent.push(connect(&host).await);
    }

    // A new client still gets its answer.
    assert_eq!(healthz(&host).await, StatusCode::OK);

    // Room was made by closing the longest idle: every kept-alive one (the
    // silent ones came later), then the oldest silent one.
    for stream in &mut kept_alive {
        assert!(
            closed_by_host(stream).await,
            "an old idle connection stayed open"
        );
    }
    assert!(closed_by_host(&mut silent[0]).await);
    // The newest is still served.
    let newest = silent.last_mut().unwrap();
    assert!(probe(newest).await, "the newest connection was cut");

    let evicted = metric(&host, "onething_connections_evicted_total").await;
    assert!(evicted > CAP as f64, "evicted {evicted}");
    assert_eq!(
        metric(&host, "onething_connections_refused_total").await,
        0.0
    );
    // The ones it closed are gone from the gauge (their tasks end just
    // after they close, so give them a moment).
    let mut open = f64::MAX;
    for _ in 0..100 {
        open = metric(&host, "onething_connections_open").await;
        if open <= CAP as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        open <= CAP as f64,
        "{open} connections open over a cap of {CAP}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_connection_with_a_request_in_flight_is_never_closed_for_a_new_one() {
    let host = TestHost::start_with(&[], |config| {
        config.limits.max_connections = 2;
        config.admin_token = Some(ADMIN_TOKEN.into());
    })
    .await;
    let mut busy = start_upload(&host).await;
    let mut idle = connect(&host).await;
    assert!(probe(&mut idle).await);

    // At the cap: the idle one makes room, the busy one is left alone.
    let mut second_busy = start_upload(&host).await;
    assert!(closed_by_host(&mut idle).await);

    // Both busy: a new connection is refused.
    let mut refused = connect(&host).await;
    assert!(closed_by_host(&mut refused).await);

    // The uploads were never cut: their bodies arrive and are answered.
    for stream in [&mut busy, &mut second_busy] {
        stream.write_all(b"junk").await.unwrap();
        assert!(
            read_until(stream, "package_malformed").await,
            "an upload was cut"
        );
    }

    // Idle again, so the probe gets in.
    assert_eq!(healthz(&host).await, StatusCode::OK);
    assert_eq!(
        metric(&host, "onething_connections_refused_total").await,
        1.0
    );
    assert!(metric(&host, "onething_connections_evicted_total").await >= 2.0);
    host.stop().await;
}
