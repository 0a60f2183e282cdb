//! hivewatch served in the test's own process through `app::serve`, for tests that need no second process: the
//! same wiring as `hivewatch serve`, on listeners bound to free ports, stopped by a channel instead of a signal.
#![allow(dead_code)]

use clap::Parser;
use hivewatch::app::{Listeners, serve};
use hivewatch::cli::{Cli, Command};
use hivewatch::metrics::Metrics;
use hivewatch::store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct InProcess {
    pub http: String,
    pub grpc: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    /// Starts on a fresh data directory with `extra` serve flags.
    pub async fn start(extra: &[&str]) -> InProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().display().to_string();
        let argv = [
            "hivewatch",
            "serve",
            "--data-dir",
            &data_dir,
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ]
        .into_iter()
        .chain(extra.iter().copied());
        let Command::Serve(args) = Cli::try_parse_from(argv).expect("serve flags").command else {
            unreachable!("the command is serve");
        };
        args.validate().expect("valid serve flags");
        let metrics = Metrics::new().expect("metrics");
        let store = Store::open(&args.store.store_config().expect("store config"))
            .await
            .expect("open the store");
        let listeners = Listeners::bind(args.listen.grpc_addr, args.listen.http_addr)
            .await
            .expect("bind");
        let http = format!("http://{}", listeners.http.local_addr().unwrap());
        let grpc = format!("http://{}", listeners.grpc.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(*args, metrics, store, listeners, async {
            let _ = stopped.await;
        }));
        InProcess {
            http,
            grpc,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    /// Starts the staged shutdown and waits for `serve` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("serve task")
    }
}
