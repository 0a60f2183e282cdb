//! The event source: hook events posted to `/api/v1/observability/event` at a fixed rate, `batch` events per
//! request (a JSON array), open loop: a request is sent at its scheduled time whether or not earlier ones were
//! answered, over a pool of keep-alive HTTP/1.1 connections.
//!
//! Event `seq` belongs to session `seq % sessions`; its payload carries `bench_run` (this run), `bench_seq` and
//! `bench_sent_ns` (the wall clock just before its request was handed to the HTTP client).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;

use crate::client::now_ns;
use crate::latency::histogram;

pub struct Plan {
    pub server: SocketAddr,
    pub token: Option<String>,
    pub run_tag: u64,
    pub sessions: Arc<[String]>,
    /// Events per second.
    pub rate: u64,
    /// Events per request.
    pub batch: u64,
    pub total_events: u64,
    pub request_timeout: Duration,
}

pub struct Report {
    pub requests: u64,
    pub events_sent: u64,
    /// Events in requests answered 2xx, by session.
    pub accepted_by_session: Vec<u64>,
    pub failed_requests: u64,
    pub first_error: Option<String>,
    /// Request to answer, µs.
    pub ack: Histogram<u64>,
    /// How late requests left against their schedule, µs.
    pub lateness: Histogram<u64>,
    pub elapsed: Duration,
}

impl Report {
    pub fn accepted(&self) -> u64 {
        self.accepted_by_session.iter().sum()
    }
}

struct Answer {
    first_seq: u64,
    events: u64,
    ok: bool,
    error: Option<String>,
    ack_us: u64,
}

/// The body of request `tick`: a JSON array of its events, stamped `sent_ns`.
pub fn body(plan: &Plan, tick: u64, sent_ns: u64) -> (u64, u64, String) {
    let first = tick * plan.batch;
    let n = plan.batch.min(plan.total_events.saturating_sub(first));
    let mut s = String::with_capacity(160 * n as usize);
    s.push('[');
    for seq in first..first + n {
        if seq > first {
            s.push(',');
        }
        let session = &plan.sessions[(seq % plan.sessions.len() as u64) as usize];
        let _ = write!(
            s,
            r#"{{"session_id":"{session}","hook_event_name":"Notification","message":"wsbench","bench_run":{},"bench_seq":{seq},"bench_sent_ns":{sent_ns}}}"#,
            plan.run_tag
        );
    }
    s.push(']');
    (first, n, s)
}

pub async fn run(plan: Arc<Plan>) -> Report {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http();
    let uri: hyper::Uri = format!("http://{}/api/v1/observability/event", plan.server)
        .parse()
        .expect("valid URI");
    let ticks = plan.total_events.div_ceil(plan.batch);
    let interval_ns = plan.batch * 1_000_000_000 / plan.rate;
    let mut report = Report {
        requests: 0,
        events_sent: 0,
        accepted_by_session: vec![0; plan.sessions.len()],
        failed_requests: 0,
        first_error: None,
        ack: histogram(),
        lateness: histogram(),
        elapsed: Duration::ZERO,
    };
    let mut inflight = JoinSet::new();
    let start = tokio::time::Instant::now();
    for tick in 0..ticks {
        let at = start + Duration::from_nanos(interval_ns * tick);
        tokio::time::sleep_until(at).await;
        let late = tokio::time::Instant::now().saturating_duration_since(at);
        report
            .lateness
            .saturating_record((late.as_micros() as u64).max(1));
        let (task_plan, client, uri) = (plan.clone(), client.clone(), uri.clone());
        inflight.spawn(async move {
            let plan = task_plan;
            let sent_ns = now_ns();
            let (first_seq, events, body) = body(&plan, tick, sent_ns);
            let started = Instant::now();
            let mut req = hyper::Request::post(uri).header("content-type", "application/json");
            if let Some(t) = &plan.token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let req = req
                .body(Full::new(Bytes::from(body)))
                .expect("valid request");
            let result = tokio::time::timeout(plan.request_timeout, async {
                let resp = client.request(req).await.map_err(|e| format!("{e:#}"))?;
                let status = resp.status();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                if status.is_success() {
                    Ok(())
                } else {
                    let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                    Err(format!("HTTP {status}: {}", text.trim()))
                }
            })
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", plan.request_timeout)));
            Answer {
                first_seq,
                events,
                ok: result.is_ok(),
                error: result.err(),
                ack_us: started.elapsed().as_micros() as u64,
            }
        });
        report.requests += 1;
        while let Some(done) = inflight.try_join_next() {
            tally(&plan, &mut report, done);
        }
    }
    while let Some(done) = inflight.join_next().await {
        tally(&plan, &mut report, done);
    }
    report.elapsed = start.elapsed();
    report
}

fn tally(plan: &Plan, report: &mut Report, done: Result<Answer, tokio::task::JoinError>) {
    let a = match done {
        Ok(a) => a,
        Err(e) => Answer {
            first_seq: 0,
            events: 0,
            ok: false,
            error: Some(format!("request task failed: {e}")),
            ack_us: 0,
        },
    };
    report.events_sent += a.events;
    report.ack.saturating_record(a.ack_us.max(1));
    if a.ok {
        let sessions = plan.sessions.len() as u64;
        for seq in a.first_seq..a.first_seq + a.events {
            report.accepted_by_session[(seq % sessions) as usize] += 1;
        }
    } else {
        report.failed_requests += 1;
        if report.first_error.is_none() {
            report.first_error = a.error;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_cover_the_plan_and_spread_sessions() {
        let plan = Plan {
            server: "127.0.0.1:1".parse().unwrap(),
            token: None,
            run_tag: 99,
            sessions: vec!["s0".to_string(), "s1".into(), "s2".into()].into(),
            rate: 1000,
            batch: 4,
            total_events: 10,
            request_timeout: Duration::from_secs(1),
        };
        let (first, n, b) = body(&plan, 0, 123);
        assert_eq!((first, n), (0, 4));
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v[3]["session_id"], "s0");
        assert_eq!(v[1]["session_id"], "s1");
        assert_eq!(v[2]["bench_seq"], 2);
        assert_eq!(v[2]["bench_sent_ns"], 123);
        assert_eq!(v[0]["bench_run"], 99);
        // The last request holds what is left.
        let (first, n, b) = body(&plan, 2, 5);
        assert_eq!((first, n), (8, 2));
        assert_eq!(
            serde_json::from_str::<Vec<serde_json::Value>>(&b)
                .unwrap()
                .len(),
            2
        );
    }
}
