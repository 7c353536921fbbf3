//! Shared helpers of the end-to-end tests.
#![allow(dead_code)]

use assert_cmd::Command;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `../shared/` beside the checkout (CI has it too).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The shopsim kit, or `None` with a one-line reason printed (a failure under CI).
pub fn shopsim() -> Option<PathBuf> {
    let p = shared_dir().join("scenarios/shopsim.py");
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok();
    let what = format!("python3 and {} (the scenario kit) are needed", p.display());
    need(p.exists() && python, &what).then_some(p)
}

/// Run the scenario kit with `args`; panics with its stderr if it fails.
pub fn run_shopsim<'a>(kit: &Path, args: impl IntoIterator<Item = &'a std::ffi::OsStr>) {
    let st = std::process::Command::new("python3")
        .arg(kit)
        .args(args)
        .output()
        .expect("run shopsim");
    assert!(
        st.status.success(),
        "shopsim failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// Generate a shop tree with shopsim: returns (root, manifest json).
pub fn shop_tree(
    dir: &Path,
    files: u32,
    flavor: &str,
    seed: u32,
) -> Option<(PathBuf, serde_json::Value)> {
    let kit = shopsim()?;
    let root = dir.join("shop");
    let (files, seed) = (files.to_string(), seed.to_string());
    run_shopsim(
        &kit,
        [
            "tree".as_ref(),
            root.as_os_str(),
            "--files".as_ref(),
            files.as_ref(),
            "--flavor".as_ref(),
            flavor.as_ref(),
            "--seed".as_ref(),
            seed.as_ref(),
        ],
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("shop.manifest.json")).unwrap()).unwrap();
    Some((root, manifest))
}

/// A small hand-made shop (no kit needed).
pub fn tiny_shop(dir: &Path) -> PathBuf {
    let root = dir.join("shop");
    for (p, c) in [
        (
            "index.php",
            "<?php require 'app/Plugin/Payment/CardPayment.php';\n",
        ),
        (
            "app/Plugin/Payment/CardPayment.php",
            "<?php\nfunction pay($card) {\n  return gateway($card);\n}\n",
        ),
        (
            "app/template/default/Shopping/index.twig",
            "<form action=\"/pay\">\n</form>\n",
        ),
        ("html/upload/save_image/item.jpg", "\u{ff}JPEG"),
        ("vendor/lib/a.php", "<?php return 1;\n"),
        ("var/cache/x.php", "<?php // cache\n"),
    ] {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
    std::fs::create_dir_all(root.join("src/Eccube")).unwrap();
    root
}

/// A tiny shop in `dir`, with `mamori init` run on it (config and state in `dir`).
pub fn init_tiny_shop(dir: &Path) -> PathBuf {
    let root = tiny_shop(dir);
    mamori(dir)
        .args(["init", "--root"])
        .arg(&root)
        .assert()
        .success();
    root
}

/// Skip (printing why), or fail under CI, when a prerequisite is missing.
pub fn need(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test, but {what}");
    }
    eprintln!("skipped: {what}");
    false
}

/// `mamori` with the config in `dir`, English, no colour, no LANG surprises.
pub fn mamori(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("mamori").unwrap();
    c.current_dir(dir)
        .env_remove("MAMORI_CONFIG")
        .env("LANG", "C.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("NO_COLOR", "1");
    c
}

/// Parse JSON Lines output.
pub fn findings(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(stdout.to_vec())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn is_root() -> bool {
    nix::unistd::Uid::current().is_root()
}

/// A running `mamori watch` whose stdout lines we can wait for.
/// `mamori --json watch --response alert` in `dir` (its `mamori.toml`), messages in
/// English: the daemon as most tests run it.
pub fn watch_cmd(dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("mamori"));
    c.current_dir(dir)
        .env("LANG", "C.UTF-8")
        .args(["--json", "watch", "--response", "alert"]);
    c
}

pub struct Watch {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Watch {
    pub fn start(cmd: std::process::Command) -> (Watch, String) {
        Watch::start_until(cmd, None)
    }

    /// Start, and also wait (bounded) until a stderr line contains `ready` (e.g. the note
    /// that the access logs are open), so nothing the test writes next races start-up.
    pub fn start_until(mut cmd: std::process::Command, ready: Option<&str>) -> (Watch, String) {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start watch");
        let stderr = child.stderr.take().unwrap();
        let mut banner = String::new();
        let mut r = BufReader::new(stderr);
        r.read_line(&mut banner).unwrap();
        if let Some(needle) = ready {
            let mut line = banner.clone();
            while !line.contains(needle) {
                line.clear();
                let n = r.read_line(&mut line).unwrap_or(0);
                assert!(n > 0, "watch ended before saying {needle:?}");
            }
        }
        std::thread::spawn(move || for _ in r.lines() {});
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        // Give the start-up sweep a moment; findings arriving later are awaited below.
        std::thread::sleep(Duration::from_millis(300));
        (Watch { child, lines: rx }, banner)
    }

    /// Wait (bounded) for the first finding of `kind`; returns it.
    pub fn wait_kind(&self, kind: &str) -> serde_json::Value {
        self.wait_kind_within(kind, Duration::from_secs(20))
    }

    /// [`Watch::wait_kind`] with a longer bound (a browser round, say).
    pub fn wait_kind_within(&self, kind: &str, bound: Duration) -> serde_json::Value {
        let mut got = Vec::new();
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                let f: serde_json::Value = serde_json::from_str(&l).expect("JSON line");
                if f["kind"] == kind {
                    return f;
                }
                got.push(f);
            }
        }
        panic!("timed out waiting for {kind}; got {got:?}");
    }

    /// Wait (bounded) until findings matching `want` all arrived.
    pub fn wait_for(&self, want: &[(&str, &str)]) -> Vec<serde_json::Value> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                got.push(serde_json::from_str::<serde_json::Value>(&l).expect("JSON line"));
            }
            if want
                .iter()
                .all(|(k, p)| got.iter().any(|f| f["kind"] == *k && f["path"] == *p))
            {
                return got;
            }
        }
        panic!("timed out waiting for {want:?}; got {got:?}");
    }

    /// Wait (bounded) until `attack.request` findings from all `ips` arrived; then keep
    /// reading for a moment so that repeats would show.
    pub fn wait_for_ips(&self, ips: &[&str]) -> Vec<serde_json::Value> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let seen = |got: &Vec<serde_json::Value>| {
            ips.iter().all(|ip| {
                got.iter()
                    .any(|f| f["kind"] == "attack.request" && f["ip"] == *ip)
            })
        };
        while Instant::now() < deadline && !seen(&got) {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                got.push(serde_json::from_str::<serde_json::Value>(&l).expect("JSON line"));
            }
        }
        assert!(seen(&got), "timed out waiting for {ips:?}; got {got:?}");
        let settle = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < settle {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                got.push(serde_json::from_str::<serde_json::Value>(&l).expect("JSON line"));
            }
        }
        got
    }
}

impl Watch {
    /// Everything that arrives within `d`.
    pub fn drain(&self, d: Duration) -> Vec<serde_json::Value> {
        let mut got = Vec::new();
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                got.push(serde_json::from_str::<serde_json::Value>(&l).expect("JSON line"));
            }
        }
        got
    }

    /// Stop with SIGTERM (the orderly path) and wait (bounded) for the exit.
    pub fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "watch exited with {st}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("watch did not stop within 20 s of SIGTERM");
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
