//! The deployment files (`Dockerfile`, `.dockerignore`, `compose/`, `otel-config/`), checked without a container
//! engine, by the programs that read them where they install here and against each other everywhere else.
//!
//! - `compose/docker-compose.yml` is validated against the Compose specification's JSON schema
//!   (`compose/compose-spec.schema.json`, committed) and by `docker-compose config` (Compose v1 from PyPI, which
//!   interpolates `.env.example` and checks the file its own way). Then: every mounted path and the build context
//!   exist, every `depends_on` names a service (with a health check where it waits for health), every service has
//!   a health check (except those listed in [`NO_HEALTHCHECK`], each for a reason), every `${VAR}` is set in
//!   `.env.example` and every variable there is used, the `HIVEWATCH_*` variables are ones `hivewatch serve`
//!   knows, and the host names in the Grafana data sources, the Prometheus targets and the collector's resolver
//!   are services or aliases of the file.
//! - The hivewatch health check (the compose file's and the Dockerfile's, which must be the same script) runs
//!   against a real hivewatch: it passes while it serves and fails once it is gone.
//! - The Dockerfile's stages, user, ports, entrypoint and command; the build context that `.dockerignore` leaves
//!   (computed by docker-py, the library Compose v1 builds with) holds every source and no `target/`, and
//!   `cargo metadata --locked` resolves in a copy of it.
//! - The Collector and Tempo configurations, parsed, for the keys they need and for pipelines that only name
//!   components that exist.
//! - `promtool check config` on `compose/prometheus.yml`, laid out as the container sees it (rules and token file
//!   beside it).
//! - `otel-config/claude-code-settings.json` parses, holds the telemetry variables, and its hooks are exactly
//!   what `hivewatch install-hooks --user --endpoint http://127.0.0.1:8318` writes, with `hivewatch` on PATH;
//!   `otel-config/claude-code.env` sets the same variables when sourced.
//!
//! Python tools come from PyPI into a virtual environment under the target directory, pinned ([`PIP_STEPS`]);
//! promtool from Debian's `prometheus` package (`bash scripts/test.sh` installs it). Nothing skips: a missing tool
//! fails the test with what to install.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::Server;
use regex::Regex;
use serde_json::{Value, json};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Services of the compose file that have no health check, and why.
const NO_HEALTHCHECK: &[(&str, &str)] = &[(
    "otel-collector",
    "the contrib image has no shell or HTTP client to run a check with",
)];

/// The image every hivewatch replica of the compose file runs.
const HIVEWATCH_IMAGE: &str = "hivewatch:local";

/// The hook endpoint of otel-config/claude-code-settings.json: the first replica's published HTTP port.
const HOOK_ENDPOINT: &str = "http://127.0.0.1:8318";

/// The Python packages, in install order, exactly pinned. docker-compose 1.29.2 wants PyYAML < 6, whose last
/// release (5.4.1) has no wheel for current Pythons and does not build with Cython 3: it is built first, without
/// build isolation, with Cython 0.29. jsonschema 3.2 (docker-compose's) validates the draft-07 Compose schema.
const PIP_STEPS: &[&[&str]] = &[
    &["setuptools==65.5.0", "wheel==0.48.0", "cython==0.29.37"],
    &["--no-build-isolation", "pyyaml==5.4.1"],
    &[
        "docker-compose==1.29.2",
        "jsonschema==3.2.0",
        "docker==7.2.0",
        "python-dotenv==0.21.1",
        "requests==2.34.2",
        "urllib3==2.8.0",
        "websocket-client==0.59.0",
        "paramiko==5.1.0",
        "texttable==1.7.2",
        "dockerpty==0.4.1",
        "docopt==0.6.2",
        "distro==1.9.0",
        "attrs==26.1.0",
        "pyrsistent==0.20.0",
        "six==1.17.0",
        "certifi==2026.10.19.post1",
        "charset-normalizer==3.5.3",
        "idna==3.20",
        "bcrypt==5.0.0",
        "cryptography==50.0.2",
        "cffi==2.1.1",
        "pycparser==3.12",
        "PyNaCl==1.6.2",
        "invoke==3.0.3",
    ],
];

/// YAML on stdin, JSON on stdout (PyYAML's safe loader: anchors and `<<` merge keys resolved).
const PY_YAML_TO_JSON: &str = r#"
import json, sys, yaml
json.dump(yaml.safe_load(sys.stdin), sys.stdout)
"#;

/// argv: schema, document (YAML or JSON). Prints every violation; exits 1 when there is one.
const PY_SCHEMA_CHECK: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1], encoding="utf-8"))
jsonschema.Draft7Validator.check_schema(schema)
doc = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
for e in errors:
    print("/".join(str(p) for p in e.absolute_path) or "(top level)", ":", e.message)
sys.exit(1 if errors else 0)
"#;

/// argv: the build context's root. The paths `docker build` would send, as docker-py computes them from
/// .dockerignore (it reads the file the same way: blank lines and `#` comments dropped).
const PY_BUILD_CONTEXT: &str = r##"
import json, sys
from docker.utils.build import exclude_paths
root = sys.argv[1]
with open(root + "/.dockerignore", encoding="utf-8") as f:
    patterns = [l.strip() for l in f.read().splitlines() if l.strip() and not l.strip().startswith("#")]
json.dump(sorted(exclude_paths(root, patterns, dockerfile="Dockerfile")), sys.stdout)
"##;

fn repo(rel: &str) -> PathBuf {
    Path::new(REPO).join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Runs `cmd` (stdin from `input`); its stdout, or a panic with everything it said.
fn run_with_input(mut cmd: Command, input: &str) -> String {
    let (ok, stdout, stderr, shown) = try_run(&mut cmd, input);
    assert!(ok, "{shown} failed:\n{stdout}{stderr}");
    stdout
}

fn run(cmd: Command) -> String {
    run_with_input(cmd, "")
}

/// Runs `cmd` in the repository: (success, stdout, stderr, the command as shown in messages).
fn try_run(cmd: &mut Command, input: &str) -> (bool, String, String, String) {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .current_dir(REPO)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {shown}: {e}"));
    // Written and closed before reading: the inputs are small (a pipe buffer at most a few times over).
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(input.as_bytes())
        .unwrap_or_else(|e| panic!("write to {shown}: {e}"));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {shown}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        shown,
    )
}

// --- the Python tools ------------------------------------------------------------------------------------------

struct PyTools {
    python: PathBuf,
    docker_compose: PathBuf,
}

/// The virtual environment with [`PIP_STEPS`], made once under the target directory and reused while the pins
/// are the same. Test processes that run at once (nextest) take turns through a file lock.
fn py() -> &'static PyTools {
    static TOOLS: OnceLock<PyTools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let venv = base.join("deploy-venv");
        let bin = venv.join("bin");
        let tools = PyTools {
            python: bin.join("python"),
            docker_compose: bin.join("docker-compose"),
        };
        let stamp = venv.join("hivewatch-pins.txt");
        let pins = format!("{PIP_STEPS:?}");
        let ready = || {
            tools.docker_compose.is_file()
                && std::fs::read_to_string(&stamp).is_ok_and(|s| s == pins)
        };
        if ready() {
            return tools;
        }
        std::fs::create_dir_all(&base).expect("create the target's tmp directory");
        let lock = std::fs::File::create(base.join("deploy-venv.lock")).expect("create lock file");
        lock.lock().expect("lock deploy-venv.lock");
        if !ready() {
            let _ = std::fs::remove_dir_all(&venv);
            let python = std::env::var("HIVEWATCH_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
            let how = format!(
                "The deployment checks install pinned Python packages from PyPI into {} and need a Python 3 with \
                 the venv module and pip ({python}; set HIVEWATCH_TEST_PYTHON to use another interpreter), and \
                 PyPI reachable through pip's configuration.",
                venv.display()
            );
            let mut create = Command::new(&python);
            create.arg("-m").arg("venv").arg(&venv);
            let (ok, out, err, shown) = try_run(&mut create, "");
            assert!(ok, "{shown} failed:\n{out}{err}\n{how}");
            for step in PIP_STEPS {
                let mut pip = Command::new(&tools.python);
                pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"])
                    .args(*step);
                let (ok, out, err, shown) = try_run(&mut pip, "");
                assert!(ok, "{shown} failed:\n{out}{err}\n{how}");
            }
            std::fs::write(&stamp, &pins).expect("write the pins stamp");
        }
        drop(lock);
        tools
    })
}

fn yaml_text(text: &str, what: &str) -> Value {
    let mut cmd = Command::new(&py().python);
    cmd.arg("-c").arg(PY_YAML_TO_JSON);
    let json = run_with_input(cmd, text);
    serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{what}: PyYAML's JSON does not parse: {e}"))
}

fn yaml(rel: &str) -> Value {
    yaml_text(&read(&repo(rel)), rel)
}

/// `docker-compose` (v1) on the compose file, with `.env.example` as its `.env`.
fn docker_compose(args: &[&str]) -> (bool, String, String, String) {
    let mut cmd = Command::new(&py().docker_compose);
    cmd.arg("--project-directory")
        .arg(repo("compose"))
        .arg("-f")
        .arg(repo("compose/docker-compose.yml"))
        .arg("--env-file")
        .arg(repo("compose/.env.example"))
        .args(args)
        // A developer's own compose settings must not change what is checked.
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROFILES");
    // Compose prefers the process environment to the env file: only .env.example may set its variables here.
    for key in env_file_keys(&read(&repo("compose/.env.example"))) {
        cmd.env_remove(key);
    }
    try_run(&mut cmd, "")
}

// --- helpers over the parsed files -----------------------------------------------------------------------------

fn compose() -> Value {
    yaml("compose/docker-compose.yml")
}

fn services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose["services"]
        .as_object()
        .expect("services is a mapping")
}

/// Names of the services that run the hivewatch image.
fn hivewatch_services(compose: &Value) -> Vec<String> {
    services(compose)
        .iter()
        .filter(|(_, s)| s["image"] == HIVEWATCH_IMAGE)
        .map(|(name, _)| name.clone())
        .collect()
}

/// A service's `environment` as a map (the file writes mappings; a list of `K=V` is accepted too).
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The `(source, target)` of each short-syntax volume of a service.
fn volumes(service: &Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_array()
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let s = v.as_str().expect("volumes are written in the short syntax");
            let mut parts = s.split(':');
            let source = parts.next().unwrap_or_default().to_string();
            let target = parts
                .next()
                .unwrap_or_else(|| panic!("volume {s:?} has no target"))
                .to_string();
            (source, target)
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

/// The healthcheck test of a service as a bash script: `[CMD, bash, -c, script]`.
fn bash_check(service: &Value, name: &str) -> String {
    let test = strings(&service["healthcheck"]["test"]);
    assert_eq!(
        test.get(..3),
        Some(&["CMD".to_string(), "bash".into(), "-c".into()][..]),
        "{name}: the health check runs a bash script"
    );
    test[3].clone()
}

/// `${NAME}`, `${NAME:-…}`, `${NAME:?…}` and `$NAME` in a compose file's text outside comment lines; `$$` is an
/// escaped dollar.
fn referenced_variables(text: &str) -> BTreeSet<String> {
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let re =
        Regex::new(r"(\$+)(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))").expect("regex");
    re.captures_iter(&text)
        .filter(|c| c[1].len() % 2 == 1)
        .map(|c| c.get(2).or(c.get(3)).expect("a name").as_str().to_string())
        .collect()
}

/// The keys of an env file (`KEY=value` lines; comments and blank lines skipped).
fn env_file_keys(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split_once('=')
                .unwrap_or_else(|| panic!("{l:?} is not KEY=value"))
                .0
                .to_string()
        })
        .collect()
}

/// `host` of `scheme://host:port/…` or `host:port`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', ':']).next().unwrap_or_default()
}

fn port_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or_default();
    hostport.rsplit_once(':').map_or("", |(_, p)| p)
}

/// `hivewatch serve --help` with its whitespace collapsed, so that a wrapped line still reads `[env: NAME=`.
fn serve_help() -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hivewatch"));
    cmd.args(["serve", "--help"]);
    run(cmd).split_whitespace().collect::<Vec<_>>().join(" ")
}

// --- the compose file ------------------------------------------------------------------------------------------

#[test]
fn compose_file_is_valid_for_the_compose_schema_and_for_docker_compose() {
    let schema = repo("compose/compose-spec.schema.json");
    let check = |doc: &Path| {
        let mut cmd = Command::new(&py().python);
        cmd.arg("-c").arg(PY_SCHEMA_CHECK).arg(&schema).arg(doc);
        try_run(&mut cmd, "")
    };
    let (ok, out, err, shown) = check(&repo("compose/docker-compose.yml"));
    assert!(
        ok,
        "{shown}: the compose file breaks the Compose schema:\n{out}{err}"
    );

    // The schema is strict: a misspelt key in a service is reported.
    let mut broken = compose();
    broken["services"]["redis"]["helthcheck"] = json!({"test": ["CMD", "true"]});
    let tmp = tempfile::tempdir().expect("temp dir");
    let broken_path = tmp.path().join("broken.json");
    std::fs::write(&broken_path, broken.to_string()).expect("write");
    let (ok, out, _, _) = check(&broken_path);
    assert!(
        !ok && out.contains("helthcheck"),
        "the schema check missed an unknown key: {out}"
    );

    // Compose v1 interpolates .env.example, resolves the merge keys and checks the file against its own schema.
    let (ok, out, err, shown) = docker_compose(&["config", "-q"]);
    assert!(ok, "{shown}:\n{out}{err}");
    let (ok, out, err, shown) = docker_compose(&["config"]);
    assert!(ok, "{shown}:\n{out}{err}");
    let resolved = yaml_text(&out, "docker-compose config");
    let env = env_file_keys(&read(&repo("compose/.env.example")));
    assert!(env.contains("POSTGRES_PASSWORD"));
    for name in hivewatch_services(&compose()) {
        let vars = environment(&resolved["services"][&name]);
        assert_eq!(
            vars["HIVEWATCH_DATABASE_URL"],
            "postgres://hivewatch:change-me-postgres@postgres:5432/hivewatch",
            "{name}"
        );
        assert_eq!(
            vars["HIVEWATCH_INGEST_TOKEN"], "change-me-ingest-token",
            "{name}"
        );
        assert_eq!(
            vars["HIVEWATCH_READ_TOKEN"], "change-me-read-token",
            "{name}"
        );
    }
    // Published ports follow PUBLIC_BIND_ADDRESS, and the unauthenticated UIs stay on loopback.
    for (service, port) in [
        ("otel-collector", "4317"),
        ("otel-collector", "4318"),
        ("grafana", "3000"),
        ("prometheus", "9090"),
        ("alertmanager", "9093"),
    ] {
        let ports = strings(&resolved["services"][service]["ports"]);
        assert!(
            ports
                .iter()
                .any(|p| p.starts_with(&format!("127.0.0.1:{port}:{port}"))),
            "{service} publishes {port} on 127.0.0.1 by default: {ports:?}"
        );
    }

    // A required variable missing from .env stops compose, saying which.
    let tmp_env = tmp.path().join("env");
    let without: String = read(&repo("compose/.env.example"))
        .lines()
        .filter(|l| !l.starts_with("HIVEWATCH_READ_TOKEN="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&tmp_env, without).expect("write env");
    let mut cmd = Command::new(&py().docker_compose);
    cmd.arg("--project-directory")
        .arg(repo("compose"))
        .arg("-f")
        .arg(repo("compose/docker-compose.yml"))
        .arg("--env-file")
        .arg(&tmp_env)
        .args(["config", "-q"]);
    for key in &env {
        cmd.env_remove(key);
    }
    let (ok, out, err, _) = try_run(&mut cmd, "");
    assert!(
        !ok && err.contains("set HIVEWATCH_READ_TOKEN in compose/.env"),
        "compose without the read token: {out}{err}"
    );
}

#[test]
fn compose_references_resolve() {
    let compose = compose();
    let services = services(&compose);
    let compose_dir = repo("compose");
    let named_volumes: BTreeSet<&String> = compose["volumes"]
        .as_object()
        .expect("top-level volumes")
        .keys()
        .collect();

    for (name, service) in services {
        // Images are pinned to a version (the local hivewatch build aside).
        let image = service["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no image"));
        if image != HIVEWATCH_IMAGE {
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
            assert!(
                !tag.is_empty() && tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
                "{name}: image {image} is not pinned to a version"
            );
        }
        for (source, target) in volumes(service) {
            if source.starts_with('.') || source.starts_with('/') {
                let path = compose_dir.join(&source);
                assert!(
                    path.exists(),
                    "{name} mounts {source} (at {target}), which does not exist: {}",
                    path.display()
                );
            } else {
                assert!(
                    named_volumes.contains(&source),
                    "{name} mounts the volume {source}, which the top-level volumes do not declare"
                );
            }
        }
        if let Some(build) = service.get("build") {
            let context = compose_dir.join(build["context"].as_str().expect("build.context"));
            let dockerfile = build["dockerfile"].as_str().unwrap_or("Dockerfile");
            assert!(
                context.join(dockerfile).is_file(),
                "{name}: no {dockerfile} in the build context {}",
                context.display()
            );
        }
        if let Some(deps) = service["depends_on"].as_object() {
            for (dep, how) in deps {
                let target = services
                    .get(dep)
                    .unwrap_or_else(|| panic!("{name} depends on {dep}, which is not a service"));
                if how["condition"] == "service_healthy" {
                    assert!(
                        target.get("healthcheck").is_some(),
                        "{name} waits for {dep} to be healthy, but {dep} has no health check"
                    );
                }
            }
        }
        let exempt = NO_HEALTHCHECK.iter().find(|(s, _)| s == name);
        match (service.get("healthcheck"), exempt) {
            (Some(check), None) => {
                let test = strings(&check["test"]);
                assert!(
                    matches!(test.first().map(String::as_str), Some("CMD" | "CMD-SHELL")),
                    "{name}: the health check must run something: {test:?}"
                );
            }
            (None, None) => panic!("{name} has no health check (and is not in NO_HEALTHCHECK)"),
            (Some(_), Some(_)) => {
                panic!("{name} has a health check: take it out of NO_HEALTHCHECK")
            }
            (None, Some(_)) => {}
        }
    }

    // Every variable the file uses is in .env.example, and every variable there is used.
    let text = read(&repo("compose/docker-compose.yml"));
    let used = referenced_variables(&text);
    let example = env_file_keys(&read(&repo("compose/.env.example")));
    let missing: Vec<_> = used.difference(&example).collect();
    assert!(
        missing.is_empty(),
        "used in docker-compose.yml, not set in .env.example: {missing:?}"
    );
    let unused: Vec<_> = example
        .difference(&used)
        .filter(|k| *k != "COMPOSE_PROJECT_NAME")
        .collect();
    assert!(
        unused.is_empty(),
        "set in .env.example, used nowhere: {unused:?}"
    );

    // The hivewatch replicas: every HIVEWATCH_* variable is one `hivewatch serve` reads, each replica has its own
    // instance id and port, and all answer to the alias the collector resolves.
    let replicas = hivewatch_services(&compose);
    assert!(
        replicas.len() >= 2,
        "the stack runs several replicas: {replicas:?}"
    );
    let help = serve_help();
    let mut ids = BTreeSet::new();
    for name in &replicas {
        let service = &services[name];
        let vars = environment(service);
        for key in vars.keys() {
            assert!(
                help.contains(&format!("[env: {key}=")),
                "{name} sets {key}, which `hivewatch serve` does not read"
            );
        }
        assert!(
            ids.insert(vars["HIVEWATCH_INSTANCE_ID"].clone()),
            "{name}: instance ids must differ"
        );
        assert!(vars["HIVEWATCH_DATABASE_URL"].contains("@postgres:5432/"));
        assert!(services.contains_key(host_of(&vars["HIVEWATCH_REDIS_URL"])));
        let export = &vars["HIVEWATCH_OTLP_EXPORT_ENDPOINT"];
        assert!(
            services.contains_key(host_of(export)),
            "{name} exports to {export}"
        );
        let aliases = strings(&service["networks"]["default"]["aliases"]);
        assert!(
            aliases.contains(&"hivewatch".to_string()),
            "{name}: aliases {aliases:?}"
        );
    }

    // The collector resolves that alias, and gets the token its configuration reads.
    let collector = yaml("otel-config/collector-loadbalancing.yaml");
    for (id, exporter) in collector["exporters"].as_object().expect("exporters") {
        if id.starts_with("loadbalancing") {
            assert_eq!(exporter["resolver"]["dns"]["hostname"], "hivewatch", "{id}");
        }
    }
    let collector_env = environment(&services["otel-collector"]);
    let env_refs = Regex::new(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}").expect("regex");
    for c in env_refs.captures_iter(&read(&repo("otel-config/collector-loadbalancing.yaml"))) {
        assert!(
            collector_env.contains_key(&c[1]),
            "the collector's configuration reads {}, which its service does not set",
            &c[1]
        );
    }
    let mounts: BTreeMap<String, String> =
        volumes(&services["otel-collector"]).into_iter().collect();
    assert_eq!(
        mounts["../otel-config/collector-loadbalancing.yaml"],
        "/etc/otelcol-contrib/config.yaml"
    );
    assert!(
        strings(&services["otel-collector"]["command"])
            .contains(&"--config=/etc/otelcol-contrib/config.yaml".into())
    );

    // The Grafana data sources point at services of this file.
    let datasources = yaml("grafana-provisioning/datasources/hivewatch.yml");
    for ds in datasources["datasources"].as_array().expect("datasources") {
        let url = ds["url"].as_str().expect("url");
        assert!(
            services.contains_key(host_of(url)),
            "data source {} points at {url}, not a service of the compose file",
            ds["uid"]
        );
    }

    // Prometheus scrapes every replica by name and alerts through the Alertmanager service.
    let prometheus = yaml("compose/prometheus.yml");
    let jobs = prometheus["scrape_configs"]
        .as_array()
        .expect("scrape_configs");
    let job = jobs
        .iter()
        .find(|j| j["job_name"] == "hivewatch")
        .expect("a job named hivewatch (the rules look for it)");
    let targets: BTreeSet<String> = job["static_configs"]
        .as_array()
        .expect("static_configs")
        .iter()
        .flat_map(|c| strings(&c["targets"]))
        .collect();
    let expected: BTreeSet<String> = replicas.iter().map(|r| format!("{r}:4318")).collect();
    assert_eq!(
        targets, expected,
        "Prometheus scrapes each hivewatch replica"
    );
    for am in prometheus["alerting"]["alertmanagers"]
        .as_array()
        .expect("alertmanagers")
    {
        for target in am["static_configs"]
            .as_array()
            .expect("static_configs")
            .iter()
            .flat_map(|c| strings(&c["targets"]))
        {
            assert!(
                services.contains_key(host_of(&target)),
                "alertmanager target {target}"
            );
        }
    }
}

#[test]
fn hivewatch_health_check_passes_on_a_serving_hivewatch_and_fails_without_one() {
    let compose = compose();
    let replicas = hivewatch_services(&compose);
    let script = bash_check(&services(&compose)[&replicas[0]], &replicas[0]);
    for name in &replicas {
        assert_eq!(
            bash_check(&services(&compose)[name], name),
            script,
            "{name}: same check everywhere"
        );
    }
    let docker = dockerfile();
    let healthcheck = docker
        .iter()
        .find(|(k, _)| k == "HEALTHCHECK")
        .map(|(_, v)| v.clone())
        .expect("a HEALTHCHECK");
    let exec = healthcheck
        .split_once("CMD ")
        .map(|(_, json)| json)
        .expect("HEALTHCHECK … CMD [exec form]");
    let exec: Vec<String> = serde_json::from_str(exec).expect("HEALTHCHECK CMD in JSON form");
    assert_eq!(
        exec.len(),
        3,
        "HEALTHCHECK CMD [\"bash\", \"-c\", script]: {exec:?}"
    );
    assert_eq!(exec[..2], ["bash".to_string(), "-c".to_string()]);
    assert_eq!(
        exec[2], script,
        "the Dockerfile and the compose file run the same check"
    );
    assert_eq!(
        script.matches("4318").count(),
        1,
        "the script names its port once: {script}"
    );
    assert!(script.contains("/healthz"));

    let mut server = Server::start();
    let port = port_of(&server.http).to_string();
    let on_port = script.replace("4318", &port);
    let check = || {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(&on_port);
        try_run(&mut cmd, "")
    };
    let (ok, out, err, shown) = check();
    assert!(ok, "{shown} against a serving hivewatch:\n{out}{err}");
    server.kill9();
    let (ok, _, _, shown) = check();
    assert!(!ok, "{shown} passed with hivewatch gone");

    // Something that answers, but not 200, is not healthy either.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port().to_string();
    let answer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut request = [0u8; 1024];
        let _ = std::io::Read::read(&mut conn, &mut request);
        conn.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .expect("answer");
    });
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script.replace("4318", &port));
    let (ok, _, _, shown) = try_run(&mut cmd, "");
    answer.join().expect("the 503 server");
    assert!(!ok, "{shown} passed on a 503");
}

// --- the Dockerfile and its build context -----------------------------------------------------------------------

/// The Dockerfile's instructions, `(KEYWORD, rest)`, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let text = read(&repo("Dockerfile"));
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, rest) = current
            .split_once(char::is_whitespace)
            .expect("KEYWORD arguments");
        out.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

#[test]
fn dockerfile_builds_hivewatch_and_runs_it_unprivileged() {
    let instructions = dockerfile();
    let all = |keyword: &str| -> Vec<String> {
        instructions
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let last = |keyword: &str| all(keyword).pop().unwrap_or_else(|| panic!("no {keyword}"));

    // The builder's Rust is the crate's rust-version.
    let manifest = read(&repo("Cargo.toml"));
    let rust_version = Regex::new(r#"(?m)^rust-version\s*=\s*"([^"]+)""#)
        .expect("regex")
        .captures(&manifest)
        .expect("rust-version in Cargo.toml")[1]
        .to_string();
    assert!(
        all("ARG").contains(&format!("RUST_VERSION={rust_version}")),
        "ARG RUST_VERSION={rust_version}"
    );
    let from = all("FROM");
    assert_eq!(
        from,
        [
            "rust:${RUST_VERSION}-bookworm AS builder",
            "debian:bookworm-slim"
        ],
        "a builder stage and a slim runtime of the same Debian"
    );
    assert!(
        all("RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked -p hivewatch")),
        "the builder runs cargo build --release --locked -p hivewatch"
    );
    assert!(all("RUN").iter().any(|r| r.contains("ca-certificates")));
    assert_eq!(
        last("COPY"),
        "--from=builder /out/hivewatch /usr/local/bin/hivewatch"
    );

    let user = last("USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "the runtime runs as a numeric non-root user: USER {user}"
    );
    assert_eq!(last("EXPOSE"), "4317 4318");
    let entrypoint: Vec<String> =
        serde_json::from_str(&last("ENTRYPOINT")).expect("ENTRYPOINT in JSON form");
    assert_eq!(entrypoint, ["hivewatch"]);
    let cmd: Vec<String> = serde_json::from_str(&last("CMD")).expect("CMD in JSON form");
    assert_eq!(
        cmd,
        [
            "serve",
            "--grpc-addr",
            "0.0.0.0:4317",
            "--http-addr",
            "0.0.0.0:4318"
        ]
    );
    let help = serve_help();
    assert!(help.contains("--grpc-addr") && help.contains("--http-addr"));
    for (_, env) in instructions.iter().filter(|(k, _)| k == "ENV") {
        let key = env.split('=').next().unwrap_or_default();
        assert!(
            help.contains(&format!("[env: {key}=")),
            "ENV {key} is not a hivewatch setting"
        );
    }
}

#[test]
fn build_context_holds_the_sources_and_resolves_with_the_lock_file() {
    let mut cmd = Command::new(&py().python);
    cmd.arg("-c").arg(PY_BUILD_CONTEXT).arg(REPO);
    let context: BTreeSet<String> =
        serde_json::from_str(&run(cmd)).expect("docker-py's list of context paths");

    for needed in ["Cargo.toml", "Cargo.lock", "Dockerfile"] {
        assert!(
            context.contains(needed),
            "{needed} is not in the build context"
        );
    }
    // Every file of the sources cargo reads (what the crate includes at compile time among them).
    let mut sources = Vec::new();
    for dir in ["src", "migrations", "web", "tools"] {
        collect_files(&repo(dir), &mut sources);
    }
    assert!(sources.len() > 20, "found the sources: {}", sources.len());
    for file in &sources {
        let rel = file.strip_prefix(REPO).expect("under the repository");
        let rel = rel.to_str().expect("UTF-8 path");
        assert!(context.contains(rel), "{rel} is not in the build context");
    }
    let include = Regex::new(r#"(include_str|include_bytes|embed_migrations)!\(\s*"([^"]+)""#)
        .expect("regex");
    let mut includes = 0;
    for file in sources
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        for c in include.captures_iter(&read(file)) {
            // include_str! is relative to the file, embed_migrations! to the crate.
            let target = if &c[1] == "embed_migrations" {
                repo(&c[2])
            } else {
                file.parent().expect("parent").join(&c[2])
            };
            let target = target
                .canonicalize()
                .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
            let rel = target.strip_prefix(REPO).expect("inside the repository");
            assert!(
                context.contains(rel.to_str().expect("UTF-8")),
                "{} is compiled in but not in the context",
                rel.display()
            );
            includes += 1;
        }
    }
    assert!(
        includes > 0,
        "the crate compiles in its web assets and migrations"
    );
    for path in &context {
        for outside in ["target/", ".git/", "tests/", "compose/", "node_modules/"] {
            assert!(
                !path.starts_with(outside) && !path.contains(&format!("/{outside}")),
                "{path} should stay out of the build context"
            );
        }
    }

    // The context alone is a complete workspace: cargo resolves it against Cargo.lock without changing it.
    let tmp = tempfile::tempdir().expect("temp dir");
    for path in &context {
        let from = repo(path);
        let to = tmp.path().join(path);
        if from.is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
        } else {
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {path}: {e}"));
        }
    }
    let mut metadata = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    metadata
        .args([
            // Not --offline: metadata wants the crates of every target platform, and a machine that only ever
            // built for its own has not downloaded them all (the registry is reachable wherever cargo builds).
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(tmp.path().join("Cargo.toml"));
    let out: Value = serde_json::from_str(&run(metadata)).expect("cargo metadata JSON");
    let members = out["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .len();
    assert!(
        members >= 2,
        "the workspace and its members are in the context: {members}"
    );
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "target" && name != "node_modules" {
                collect_files(&path, out);
            }
        } else if !name.ends_with(".db") && !name.ends_with(".db-wal") && !name.ends_with(".db-shm")
        {
            out.push(path);
        }
    }
}

// --- the Collector and Tempo ------------------------------------------------------------------------------------

/// The keys a loadbalancing exporter takes (its configuration schema in opentelemetry-collector-contrib).
const LOADBALANCING_KEYS: &[&str] = &[
    "protocol",
    "resolver",
    "routing_key",
    "routing_attributes",
    "sending_queue",
    "timeout",
    "retry_on_failure",
];

#[test]
fn collector_configuration_receives_otlp_and_balances_it_over_hivewatch() {
    let config = yaml("otel-config/collector-loadbalancing.yaml");
    let protocols = &config["receivers"]["otlp"]["protocols"];
    assert_eq!(protocols["grpc"]["endpoint"], "0.0.0.0:4317");
    assert_eq!(protocols["http"]["endpoint"], "0.0.0.0:4318");

    let extensions = config["extensions"].as_object().expect("extensions");
    let enabled = strings(&config["service"]["extensions"]);
    for name in &enabled {
        assert!(
            extensions.contains_key(name),
            "service.extensions names {name}, which is not defined"
        );
    }
    for protocol in ["grpc", "http"] {
        let auth = protocols[protocol]["auth"]["authenticator"]
            .as_str()
            .expect("receiver auth");
        assert!(
            enabled.contains(&auth.to_string()),
            "{protocol} authenticates with {auth}, not enabled"
        );
        assert!(auth.starts_with("bearertokenauth"));
        assert_eq!(extensions[auth]["token"], "${env:HIVEWATCH_INGEST_TOKEN}");
    }

    let exporters = config["exporters"].as_object().expect("exporters");
    let balancers: Vec<(&String, &Value)> = exporters
        .iter()
        .filter(|(id, _)| id.split('/').next() == Some("loadbalancing"))
        .collect();
    assert!(!balancers.is_empty());
    for (id, exporter) in &balancers {
        for key in exporter.as_object().expect("exporter settings").keys() {
            assert!(
                LOADBALANCING_KEYS.contains(&key.as_str()),
                "{id}: unknown key {key}"
            );
        }
        let otlp = &exporter["protocol"]["otlp"];
        assert!(
            otlp.get("endpoint").is_none(),
            "{id}: the resolver gives the endpoints"
        );
        assert_eq!(
            otlp["headers"]["authorization"], "Bearer ${env:HIVEWATCH_INGEST_TOKEN}",
            "{id}"
        );
        assert_eq!(
            otlp["tls"]["insecure"], true,
            "{id}: hivewatch serves plain gRPC"
        );
        let resolvers: Vec<&String> = exporter["resolver"]
            .as_object()
            .expect("resolver")
            .keys()
            .collect();
        assert_eq!(resolvers, ["dns"], "{id}: one resolver");
        let dns = &exporter["resolver"]["dns"];
        assert_eq!(dns["hostname"], "hivewatch", "{id}");
        assert_eq!(dns["port"], "4317", "{id}: hivewatch's OTLP/gRPC port");
    }
    assert_eq!(exporters["loadbalancing"]["routing_key"], "traceID");
    let text = read(&repo("otel-config/collector-loadbalancing.yaml"));
    assert!(
        text.contains("# static:") && text.contains("#     - hivewatch-1:4317"),
        "the static resolver example is in the comments"
    );

    let pipelines = config["service"]["pipelines"]
        .as_object()
        .expect("pipelines");
    let mut used = BTreeSet::new();
    for signal in ["traces", "logs", "metrics"] {
        let pipeline = &pipelines
            .get(signal)
            .unwrap_or_else(|| panic!("no {signal} pipeline"));
        for (section, kind) in [
            ("receivers", "receivers"),
            ("processors", "processors"),
            ("exporters", "exporters"),
        ] {
            for id in strings(&pipeline[kind]) {
                assert!(
                    config[section].get(&id).is_some(),
                    "the {signal} pipeline names {section}.{id}, which is not defined"
                );
                used.insert(format!("{section}.{id}"));
            }
        }
        assert_eq!(
            strings(&pipeline["processors"]).first().map(String::as_str),
            Some("memory_limiter"),
            "{signal}: memory_limiter comes first"
        );
        assert!(strings(&pipeline["processors"]).contains(&"batch".to_string()));
        for id in strings(&pipeline["exporters"]) {
            let key = config["exporters"][&id]["routing_key"]
                .as_str()
                .unwrap_or("traceID");
            match signal {
                "metrics" => assert!(
                    ["service", "resource", "metric", "streamID", "attributes"].contains(&key),
                    "metrics are routed by {key}: traceID is not a routing key for metrics"
                ),
                _ => assert_eq!(key, "traceID", "{signal} are routed by trace id"),
            }
        }
    }
    for section in ["receivers", "processors", "exporters"] {
        for id in config[section].as_object().expect("section").keys() {
            assert!(
                used.contains(&format!("{section}.{id}")),
                "{section}.{id} is defined and used by no pipeline"
            );
        }
    }
    let limiter = &config["processors"]["memory_limiter"];
    assert!(limiter["check_interval"].is_string() && limiter["limit_mib"].is_u64());
}

#[test]
fn tempo_configuration_receives_otlp_and_stores_locally() {
    let tempo = yaml("otel-config/tempo.yaml");
    let otlp = &tempo["distributor"]["receivers"]["otlp"]["protocols"];
    assert_eq!(otlp["grpc"]["endpoint"], "0.0.0.0:4317");
    assert_eq!(otlp["http"]["endpoint"], "0.0.0.0:4318");
    assert_eq!(tempo["server"]["http_listen_port"], 3200);
    let storage = &tempo["storage"]["trace"];
    assert_eq!(storage["backend"], "local");

    // Its ports and paths are the ones the rest of the stack uses.
    let compose = compose();
    let service = &services(&compose)["tempo"];
    let mounts: BTreeMap<String, String> = volumes(service).into_iter().collect();
    assert_eq!(mounts["../otel-config/tempo.yaml"], "/etc/tempo.yaml");
    assert!(strings(&service["command"]).contains(&"-config.file=/etc/tempo.yaml".into()));
    let data = &mounts["tempo-data"];
    for path in [&storage["wal"]["path"], &storage["local"]["path"]] {
        let path = path.as_str().expect("a storage path");
        assert!(
            path.starts_with(&format!("{data}/")),
            "{path} is not on the tempo-data volume ({data})"
        );
    }
    let export =
        environment(&services(&compose)["hivewatch-1"])["HIVEWATCH_OTLP_EXPORT_ENDPOINT"].clone();
    assert_eq!(
        port_of(&export),
        "4317",
        "hivewatch exports to Tempo's OTLP/gRPC port"
    );
    let datasources = yaml("grafana-provisioning/datasources/hivewatch.yml");
    let tempo_ds = datasources["datasources"]
        .as_array()
        .expect("datasources")
        .iter()
        .find(|d| d["uid"] == "tempo")
        .expect("the tempo data source");
    assert_eq!(port_of(tempo_ds["url"].as_str().expect("url")), "3200");
}

// --- Prometheus --------------------------------------------------------------------------------------------------

fn promtool() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "promtool is not on PATH: it comes with Debian's `prometheus` package \
                 (`sudo apt-get install -y --no-install-recommends prometheus`); `bash scripts/test.sh` installs it \
                 when run as root"
            )
        })
}

#[test]
fn prometheus_configuration_passes_promtool_as_the_container_sees_it() {
    let promtool = promtool();
    let compose = compose();
    let service = &services(&compose)["prometheus"];

    // The layout the service gives Prometheus: config and rules mounted, the token written to a tmpfs.
    let mounts: BTreeMap<String, String> = volumes(service).into_iter().collect();
    assert_eq!(mounts["./prometheus.yml"], "/etc/prometheus/prometheus.yml");
    assert_eq!(mounts["../prometheus-rules"], "/etc/prometheus/rules");
    assert_eq!(strings(&service["tmpfs"]), ["/etc/prometheus/secrets"]);
    let script = strings(&service["command"]).join(" ");
    assert_eq!(strings(&service["entrypoint"]), ["/bin/sh", "-c"]);
    assert!(
        script.contains("> /etc/prometheus/secrets/hivewatch-read-token"),
        "{script}"
    );
    assert!(
        script.contains("--config.file=/etc/prometheus/prometheus.yml"),
        "{script}"
    );
    // Compose turns `$$` into `$`; the shell must accept the result.
    let mut syntax = Command::new("sh");
    syntax.arg("-n").arg("-c").arg(script.replace("$$", "$"));
    run(syntax);

    let config = yaml("compose/prometheus.yml");
    let job = config["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .find(|j| j["job_name"] == "hivewatch")
        .expect("job hivewatch");
    assert_eq!(job["authorization"]["type"], "Bearer");
    assert_eq!(
        job["authorization"]["credentials_file"],
        "secrets/hivewatch-read-token"
    );
    assert_eq!(strings(&config["rule_files"]), ["rules/*.rules.yml"]);

    // promtool resolves rule_files and credentials_file next to the config file, as Prometheus does.
    let tmp = tempfile::tempdir().expect("temp dir");
    let etc = tmp.path();
    std::fs::copy(repo("compose/prometheus.yml"), etc.join("prometheus.yml")).expect("copy config");
    std::os::unix::fs::symlink(repo("prometheus-rules"), etc.join("rules")).expect("symlink rules");
    std::fs::create_dir(etc.join("secrets")).expect("mkdir secrets");
    std::fs::write(etc.join("secrets/hivewatch-read-token"), "token").expect("write token");
    let mut check = Command::new(&promtool);
    check
        .args(["check", "config"])
        .arg(etc.join("prometheus.yml"));
    let out = run(check);
    let rule_files = std::fs::read_dir(repo("prometheus-rules"))
        .expect("list prometheus-rules")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".rules.yml"))
        })
        .count();
    assert!(rule_files > 0);
    assert!(
        out.contains(&format!("{rule_files} rule files found")),
        "promtool loaded the {rule_files} rule files: {out}"
    );

    // And the file in the repository, syntax only (no rules or token beside it there).
    let mut syntax = Command::new(&promtool);
    syntax
        .args(["check", "config", "--syntax-only"])
        .arg(repo("compose/prometheus.yml"));
    run(syntax);
}

// --- Claude Code -------------------------------------------------------------------------------------------------

const TELEMETRY_VARIABLES: &[&str] = &[
    "CLAUDE_CODE_ENABLE_TELEMETRY",
    "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_LOGS_EXPORT_INTERVAL",
];

#[test]
fn claude_code_settings_are_what_install_hooks_writes_plus_the_telemetry_variables() {
    let settings: Value =
        serde_json::from_str(&read(&repo("otel-config/claude-code-settings.json")))
            .expect("claude-code-settings.json is JSON");
    let env = settings["env"].as_object().expect("an env block");
    for key in TELEMETRY_VARIABLES {
        assert!(env[*key].is_string(), "env.{key} is a string");
    }
    assert!(
        env["OTEL_EXPORTER_OTLP_HEADERS"]
            .as_str()
            .is_some_and(|h| h.starts_with("Authorization=Bearer "))
    );
    let hooks = settings["hooks"].as_object().expect("a hooks block");
    assert!(hooks.len() >= 20, "every hook event: {}", hooks.len());
    let mut commands = 0;
    for (event, groups) in hooks {
        for group in groups.as_array().expect("hook groups") {
            for hook in group["hooks"].as_array().expect("hooks") {
                assert_eq!(hook["type"], "command", "{event}");
                let command = hook["command"].as_str().expect("command");
                // The shared form: `hivewatch` from PATH, a silent no-op where it is missing.
                assert!(
                    command.starts_with(
                        "if command -v hivewatch >/dev/null 2>&1; then hivewatch hook"
                    ),
                    "{event}: {command}"
                );
                assert!(
                    command.contains(&format!("--endpoint {HOOK_ENDPOINT}")),
                    "{event}: {command}"
                );
                commands += 1;
            }
        }
    }
    assert_eq!(commands, hooks.len(), "one hivewatch hook per event");

    // Exactly what the installer writes for a project's shared settings, the project's name aside: regenerate
    // with `hivewatch install-hooks --shared --dry-run --endpoint http://127.0.0.1:8318` and drop the
    // `--source-app` (the hook then names events after the session's directory); keep the env block.
    let root = tempfile::tempdir().expect("temp dir");
    let project = root.path().join("demo");
    std::fs::create_dir(&project).expect("project dir");
    let mut install = Command::new(env!("CARGO_BIN_EXE_hivewatch"));
    install
        .args([
            "install-hooks",
            "--shared",
            "--dry-run",
            "--endpoint",
            HOOK_ENDPOINT,
        ])
        .arg("--project-dir")
        .arg(&project)
        .env("HOME", root.path())
        .env("XDG_CONFIG_HOME", root.path().join(".config"))
        .env_remove("HIVEWATCH_INGEST_TOKEN")
        .env_remove("HIVEWATCH_CONFIG_DIR");
    let mut written: Value =
        serde_json::from_str(&run(install)).expect("install-hooks --dry-run prints JSON");
    for groups in written["hooks"]
        .as_object_mut()
        .expect("hooks")
        .values_mut()
    {
        for group in groups.as_array_mut().expect("groups") {
            for hook in group["hooks"].as_array_mut().expect("hooks") {
                let command = hook["command"]
                    .as_str()
                    .expect("command")
                    .replace(" --source-app demo", "");
                hook["command"] = json!(command);
            }
        }
    }
    assert_eq!(
        settings["hooks"], written["hooks"],
        "otel-config/claude-code-settings.json's hooks differ from what install-hooks writes now: regenerate them \
         (hivewatch install-hooks --shared --dry-run --endpoint {HOOK_ENDPOINT}, without --source-app)"
    );

    // The endpoints match the compose stack: hooks to the first replica, OTLP to the collector.
    let compose = compose();
    let published = |service: &str| strings(&services(&compose)[service]["ports"]);
    assert!(
        published("hivewatch-1")
            .iter()
            .any(|p| p.ends_with(&format!(":{}:4318", port_of(HOOK_ENDPOINT))))
    );
    let otlp = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        .as_str()
        .expect("endpoint");
    assert!(
        published("otel-collector")
            .iter()
            .any(|p| p.ends_with(&format!(":{}:4317", port_of(otlp))))
    );

    // claude-code.env sets the same variables; the header only with a token.
    let sourced = |token: Option<&str>| -> BTreeMap<String, String> {
        let mut bash = Command::new("bash");
        bash.arg("-c")
            .arg("set -eu; source \"$1\"; env -0")
            .arg("bash")
            .arg(repo("otel-config/claude-code.env"))
            .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
            .env_remove("HIVEWATCH_INGEST_TOKEN");
        if let Some(t) = token {
            bash.env("HIVEWATCH_INGEST_TOKEN", t);
        }
        run(bash)
            .split('\0')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let without = sourced(None);
    for key in TELEMETRY_VARIABLES {
        assert_eq!(
            Some(&without[*key]),
            env[*key].as_str().map(String::from).as_ref(),
            "{key}"
        );
    }
    assert!(!without.contains_key("OTEL_EXPORTER_OTLP_HEADERS"));
    let with = sourced(Some("abc123"));
    assert_eq!(
        with["OTEL_EXPORTER_OTLP_HEADERS"],
        "Authorization=Bearer abc123"
    );
}
