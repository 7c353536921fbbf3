//! End-to-end: after a restore, PHP-FPM must serve the good code even though its
//! OPcache holds the altered version and never looks at the file again
//! (`opcache.validate_timestamps=0`, the same effect as the attacker's restored mtime).
//! A real php-fpm started by the test; mamori asks it over FastCGI to drop the file.

mod common;
use common::*;
use mamori_internal::watch::fpm::{FpmAddr, run_script};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn php_fpm() -> Option<PathBuf> {
    let dir = std::fs::read_dir("/usr/sbin").ok()?;
    let mut found: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("php-fpm"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// php-fpm in the foreground on a socket of its own; stopped on drop. SIGTERM, not
/// SIGKILL: the master then stops its workers (killed, they would be left orphaned).
struct Fpm(Child);
impl Drop for Fpm {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_fpm(bin: &Path, dir: &Path) -> (Fpm, FpmAddr) {
    let sock = dir.join("fpm.sock");
    let conf = dir.join("fpm.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {d}/fpm.log\ndaemonize = no\n\n[shop]\nlisten = {s}\n\
             listen.mode = 0600\npm = static\npm.max_children = 2\n\
             php_admin_value[opcache.enable] = 1\n\
             php_admin_value[opcache.validate_timestamps] = 0\n\
             php_admin_value[opcache.file_update_protection] = 0\n",
            d = dir.display(),
            s = sock.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .args(["-R", "-F", "-y"])
        .arg(&conf)
        .args([
            "-d",
            "opcache.enable=1",
            "-d",
            "opcache.validate_timestamps=0",
            // Files younger than this many seconds are never cached (default 2): the
            // test's module is seconds old, and a live shop's is not.
            "-d",
            "opcache.file_update_protection=0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start php-fpm");
    let fpm = Fpm(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "php-fpm did not open {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (fpm, FpmAddr::Unix(sock))
}

/// The body of a GET of `script` through the pool.
fn get(at: &FpmAddr, script: &Path) -> String {
    let out = run_script(at, script, Duration::from_secs(5)).expect("FastCGI request");
    let s = String::from_utf8_lossy(&out).into_owned();
    match s.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_string(),
        None => s,
    }
}

#[test]
fn restore_makes_php_fpm_drop_the_altered_code_it_cached() {
    let bin = php_fpm();
    if !need(
        is_root() && bin.is_some(),
        "needs root and php-fpm (apt-get install php-fpm)",
    ) {
        return;
    }
    let bin = bin.unwrap();
    let d = tempfile::tempdir().unwrap();
    let root = tiny_shop(d.path());
    let pay = root.join("app/Plugin/Payment/CardPayment.php");
    // The module as the checkout runs it: prints what it is.
    std::fs::write(&pay, "<?php echo 'genuine';\n").unwrap();
    mamori(d.path())
        .args(["init", "--root"])
        .arg(&root)
        .assert()
        .success();

    let (_fpm, at) = start_fpm(&bin, d.path());
    assert_eq!(get(&at, &pay), "genuine");

    // The attacker alters the module, puts the mtime back and gets it compiled. With validate_timestamps off the pool does not notice the
    // file by itself: it keeps serving what it cached.
    let mtime = std::fs::metadata(&pay).unwrap().modified().unwrap();
    std::fs::write(&pay, "<?php echo 'skimmer';\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&pay)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(get(&at, &pay), "genuine", "the pool serves its cache");
    let reset = d.path().join("attacker-reset.php");
    std::fs::write(
        &reset,
        format!(
            "<?php var_export(opcache_invalidate('{}', true));\n",
            pay.display()
        ),
    )
    .unwrap();
    assert!(get(&at, &reset).contains("true"), "the attacker's reset");
    assert_eq!(get(&at, &pay), "skimmer", "altered code now cached");

    // watch (restore mode, php_fpm set) finds the change in its start-up sweep, puts the
    // good module back and asks the pool to drop its cached copy.
    let cfg = d.path().join("mamori.toml");
    let mut toml = std::fs::read_to_string(&cfg).unwrap();
    toml.push_str(&format!(
        "\n[response]\nphp_fpm = \"{}\"\nphp_fpm_script_dir = \"{}\"\n",
        match &at {
            FpmAddr::Unix(p) => p.display().to_string(),
            FpmAddr::Tcp(a) => a.clone(),
        },
        d.path().join("fpm-scripts").display()
    ));
    std::fs::write(&cfg, toml).unwrap();
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("mamori"));
    c.current_dir(d.path()).env("LANG", "C.UTF-8").args([
        "--json",
        "watch",
        "--response",
        "restore",
    ]);
    let (w, _) = Watch::start(c);
    let restored = w.wait_kind("file.restored");
    let php = restored["evidence"]["php"].as_str().unwrap_or("");
    assert!(
        php.contains("dropped its cached code"),
        "what was done about the cache: {restored}"
    );
    assert_eq!(
        std::fs::read_to_string(&pay).unwrap(),
        "<?php echo 'genuine';\n"
    );
    assert_eq!(
        get(&at, &pay),
        "genuine",
        "the pool serves the good code again"
    );
    // The one-off script is gone.
    let left: Vec<_> = std::fs::read_dir(d.path().join("fpm-scripts"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    w.terminate();
}
