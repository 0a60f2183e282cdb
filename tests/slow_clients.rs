//! Clients that send one byte a second hold neither a connection nor a worker forever, and do not slow others.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use futures_util::StreamExt;
use serde_json::json;
use uuid::Uuid;

fn addr(server: &Server) -> String {
    server.http.trim_start_matches("http://").to_string()
}

/// Writes `bytes` one a second (or until the server closes); returns what the server answered and when it hung up.
fn dribble(addr: &str, bytes: &[u8], limit: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    for b in bytes.iter().cycle() {
        if started.elapsed() > limit || stream.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(800));
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_dribbling_headers_is_disconnected_and_others_are_served() {
    let server = Server::start_with(&[
        "--header-read-timeout-secs",
        "2",
        "--body-read-timeout-secs",
        "2",
    ]);
    let a = addr(&server);
    // Twenty slowloris connections at once.
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || dribble(&a, b"POST /api/v1/observability/event HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa", Duration::from_secs(20)))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile ordinary clients are served: 100 events from 10 senders, all acknowledged and stored.
    let session = Uuid::new_v4();
    let sends = (0..100).map(|n| {
        let server = &server;
        async move {
            server
                .post_json(
                    "/api/v1/observability/event",
                    &json!({"session_id": session, "hook_event_name": "Notification", "message": format!("n{n}")}),
                )
                .await
                .0
        }
    });
    let statuses = futures_util::stream::iter(sends)
        .buffer_unordered(10)
        .collect::<Vec<u16>>()
        .await;
    let acked = statuses.iter().filter(|s| **s == 200).count();
    let mut held = Duration::ZERO;
    for t in slow {
        let (_, took) = t.join().unwrap();
        held = held.max(took);
    }
    let stored = server
        .all_events(&format!("session_id={session}"))
        .await
        .len();
    common::FaultReport {
        fault: "slow_clients",
        action: &format!(
            "20 connections sending headers at 1 byte/s (--header-read-timeout-secs 2) while 10 senders post \
             100 events; longest hold {:.1} s",
            held.as_secs_f64()
        ),
        sent: 100,
        acked,
        stored: stored.min(acked),
        lost: acked.saturating_sub(stored),
        duplicated: stored.saturating_sub(acked),
    }
    .print();
    assert_eq!(acked, 100, "{statuses:?}");
    assert_eq!(stored, 100);
    assert!(
        held < Duration::from_secs(10),
        "a header dribbler held its connection {held:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_dribbling_its_body_gets_408() {
    let server = Server::start_with(&[
        "--header-read-timeout-secs",
        "2",
        "--body-read-timeout-secs",
        "2",
    ]);
    let head = "POST /api/v1/observability/event HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    let mut stream = TcpStream::connect(addr(&server)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        let _ = stream.write_all(b"{");
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(800));
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_client_that_never_completes_a_request_is_disconnected() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;

    let server = Server::start_with(&["--header-read-timeout-secs", "2"]);
    let grpc = server.grpc.trim_start_matches("http://").to_string();
    // Five connections dribbling the HTTP/2 preface, one byte a second: no request ever starts.
    let slow: Vec<_> = (0..5)
        .map(|_| {
            let a = grpc.clone();
            std::thread::spawn(move || {
                dribble(
                    &a,
                    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                    Duration::from_secs(20),
                )
            })
        })
        .collect();
    // Meanwhile an OTLP exporter's call is served.
    let mut client = LogsServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    client
        .export(ExportLogsServiceRequest::default())
        .await
        .expect("an ordinary call is served");
    let mut held = Duration::ZERO;
    for t in slow {
        held = held.max(t.join().unwrap().1);
    }
    assert!(
        held < Duration::from_secs(10),
        "a preface dribbler held its gRPC connection {held:?}"
    );
    // The exporter's connection, opened properly and then idle past the opening deadline, is still served.
    tokio::time::sleep(Duration::from_secs(3)).await;
    client
        .export(ExportLogsServiceRequest::default())
        .await
        .expect("the exporter's connection still serves");
}
