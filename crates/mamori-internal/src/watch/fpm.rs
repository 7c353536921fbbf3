//! Make PHP-FPM drop its cached code of a restored file, over its FastCGI socket.
//!
//! An opcode cache can go on serving the altered payment module after the file is put
//! back: attackers reset the cache so their version is compiled, and the mtime they put
//! back hides the change from `opcache.validate_timestamps`. Reloading PHP-FPM clears it
//! but drops requests in flight; this asks the pool itself instead. mamori writes a
//! one-off script (random name, 0644, in a 0711 directory the pool's user can traverse
//! but not list), sends one FastCGI request that runs it, and removes it. The script
//! calls `opcache_invalidate(FILE, true)` for each restored file and says what happened.
//!
//! The pool must be able to read the script directory (not a chrooted pool; within
//! `open_basedir` if one is set) and `opcache.restrict_api` must not exclude it.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where PHP-FPM listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FpmAddr {
    /// A unix socket path (`/run/php/php8.2-fpm.sock`).
    Unix(PathBuf),
    /// `host:port` (`127.0.0.1:9000`).
    Tcp(String),
}

impl FpmAddr {
    /// A path (starting with `/`) is a unix socket; anything else is `host:port`.
    pub fn parse(s: &str) -> Result<FpmAddr, FpmError> {
        let s = s.trim();
        if s.starts_with('/') {
            return Ok(FpmAddr::Unix(PathBuf::from(s)));
        }
        match s.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(FpmAddr::Tcp(s.to_string()))
            }
            _ => Err(FpmError::Addr(s.to_string())),
        }
    }
}

impl std::fmt::Display for FpmAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FpmAddr::Unix(p) => write!(f, "{}", p.display()),
            FpmAddr::Tcp(a) => f.write_str(a),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FpmError {
    #[error(
        "response.php_fpm = `{0}` is neither a socket path (/run/php/php8.2-fpm.sock) nor host:port (127.0.0.1:9000)"
    )]
    Addr(String),
    #[error("{path}: {source}")]
    Script {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not reach PHP-FPM at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("PHP-FPM at {addr}: {msg}")]
    Request { addr: String, msg: String },
    #[error("PHP-FPM at {addr} did not run the invalidation script ({said})")]
    NotRun { addr: String, said: String },
}

/// What the pool said per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The cached code was dropped: the next request compiles the file from disk.
    Invalidated,
    /// Nothing was cached for it (or the cache is off for this pool).
    NotCached,
    /// The pool has no OPcache at all.
    NoOpcache,
}

/// A PHP-FPM pool and where mamori may put its one-off script.
#[derive(Debug, Clone)]
pub struct Fpm {
    pub addr: FpmAddr,
    pub script_dir: PathBuf,
    pub timeout: Duration,
}

const MARK: &str = "mamori-opcache:";

/// The script: hex-encoded paths, so no path can break out of the PHP string.
fn script(files: &[&Path]) -> String {
    use std::os::unix::ffi::OsStrExt;
    let list: Vec<String> = files
        .iter()
        .map(|f| {
            let hex: String = f
                .as_os_str()
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("'{hex}'")
        })
        .collect();
    format!(
        "<?php\n\
         header('Content-Type: text/plain');\n\
         $out = [];\n\
         foreach ([{}] as $h) {{\n\
         \x20   if (!function_exists('opcache_invalidate')) {{ $out[] = 'none'; continue; }}\n\
         \x20   $out[] = @opcache_invalidate(hex2bin($h), true) ? 'yes' : 'no';\n\
         }}\n\
         echo '{MARK}' . implode(',', $out);\n",
        list.join(", ")
    )
}

/// The outcomes in `stdout` (one per file), or None if the script did not run.
fn outcomes(stdout: &[u8], n: usize) -> Option<Vec<Outcome>> {
    let s = String::from_utf8_lossy(stdout);
    let rest = &s[s.find(MARK)? + MARK.len()..];
    let got: Vec<Outcome> = rest
        .trim()
        .split(',')
        .filter(|x| !x.is_empty())
        .map(|x| match x {
            "yes" => Outcome::Invalidated,
            "none" => Outcome::NoOpcache,
            _ => Outcome::NotCached,
        })
        .collect();
    (got.len() == n).then_some(got)
}

/// Removes the script however the request ends.
struct Removed(PathBuf);
impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Fpm {
    /// Ask the pool to drop its cached code of `files` (absolute paths as PHP sees them).
    pub fn invalidate(&self, files: &[&Path]) -> Result<Vec<Outcome>, FpmError> {
        let dir = &self.script_dir;
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FpmError::Script { path, source }
        };
        prepare_dir(dir).map_err(err(dir))?;
        // The name is the only key to the script: unguessable.
        let mut rnd = [0u8; 16];
        getrandom::fill(&mut rnd).map_err(|e| FpmError::Script {
            path: dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let name: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!("mamori-opcache-{name}.php"));
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
                .map_err(err(&path))?;
            // Readable by the pool's user whatever the umask.
            f.set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(err(&path))?;
            f.write_all(script(files).as_bytes()).map_err(err(&path))?;
        }
        let _removed = Removed(path.clone());
        let stdout = run_script(&self.addr, &path, self.timeout)?;
        outcomes(&stdout, files.len()).ok_or_else(|| FpmError::NotRun {
            addr: self.addr.to_string(),
            said: summary(&stdout),
        })
    }
}

/// The script directory: created 0711 (traversable by the pool's user, not listable: the
/// random name is the only key). An existing directory is never re-moded (it may be one
/// the system shares, e.g. /tmp) and is refused when others may write to it (they could
/// swap the script) or when it is not a directory.
fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let m = std::fs::symlink_metadata(dir)?;
            if !m.is_dir() {
                return Err(std::io::Error::other(
                    "not a directory (set response.php_fpm_script_dir to a directory of mamori's own)",
                ));
            }
            if m.mode() & 0o022 != 0 {
                return Err(std::io::Error::other(
                    "others may write to it; set response.php_fpm_script_dir to a directory of mamori's own (e.g. /run/mamori-fpm)",
                ));
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Run `script` (an absolute path the pool can read) in the PHP-FPM pool at `addr` with
/// one FastCGI GET; returns what it wrote (headers, then body; stderr appended).
pub fn run_script(at: &FpmAddr, script: &Path, timeout: Duration) -> Result<Vec<u8>, FpmError> {
    let addr = at.to_string();
    let connect = |source| FpmError::Connect {
        addr: addr.clone(),
        source,
    };
    let stream: Box<dyn ReadWrite> = match at {
        FpmAddr::Unix(p) => {
            let s = std::os::unix::net::UnixStream::connect(p).map_err(connect)?;
            s.set_read_timeout(Some(timeout)).map_err(connect)?;
            s.set_write_timeout(Some(timeout)).map_err(connect)?;
            Box::new(s)
        }
        FpmAddr::Tcp(a) => {
            use std::net::ToSocketAddrs;
            let sa = a
                .to_socket_addrs()
                .map_err(connect)?
                .next()
                .ok_or_else(|| connect(std::io::Error::other("no address")))?;
            let s = std::net::TcpStream::connect_timeout(&sa, timeout).map_err(connect)?;
            s.set_read_timeout(Some(timeout)).map_err(connect)?;
            s.set_write_timeout(Some(timeout)).map_err(connect)?;
            Box::new(s)
        }
    };
    let file = script.to_string_lossy().into_owned();
    let uri = "/mamori-opcache.php";
    let params = fastcgi_client::Params::default()
        .request_method("GET")
        .script_filename(file)
        .script_name(uri)
        .request_uri(uri)
        .document_uri(uri)
        .remote_addr("127.0.0.1")
        .remote_port(0)
        .server_addr("127.0.0.1")
        .server_port(80)
        .server_name("mamori")
        .content_type("")
        .content_length(0);
    let client = fastcgi_client::Client::new(futures_util::io::AllowStdIo::new(stream));
    let req = fastcgi_client::Request::new(params, fastcgi_client::io::empty());
    let resp =
        futures_executor::block_on(client.execute_once(req)).map_err(|e| FpmError::Request {
            addr: addr.clone(),
            msg: e.to_string(),
        })?;
    let mut out = resp.stdout.unwrap_or_default();
    if let Some(e) = resp.stderr
        && !out.windows(MARK.len()).any(|w| w == MARK.as_bytes())
    {
        out.extend_from_slice(b" / ");
        out.extend_from_slice(&e);
    }
    Ok(out)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The first line of what the pool answered instead (status, "File not found.", …).
fn summary(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(out);
    let line = s
        .lines()
        .filter(|l| {
            !l.trim().is_empty()
                && !l.starts_with("Content-type")
                && !l.starts_with("Content-Type")
                && !l.starts_with("X-Powered-By")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut line: String = line.chars().take(200).collect();
    if line.is_empty() {
        line = "empty answer".into();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            FpmAddr::parse("/run/php/php8.2-fpm.sock").unwrap(),
            FpmAddr::Unix("/run/php/php8.2-fpm.sock".into())
        );
        assert_eq!(
            FpmAddr::parse("127.0.0.1:9000").unwrap(),
            FpmAddr::Tcp("127.0.0.1:9000".into())
        );
        assert!(FpmAddr::parse("php-fpm").is_err());
        assert!(FpmAddr::parse("host:0").is_err());
        assert!(FpmAddr::parse(":9000").is_err());
    }

    #[test]
    fn a_shared_or_odd_script_dir_is_refused_not_re_moded() {
        let d = tempfile::tempdir().unwrap();
        let shared = d.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(prepare_dir(&shared).is_err());
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o1777, "left as it was");
        let file = d.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(prepare_dir(&file).is_err());
        let fresh = d.path().join("a/b");
        prepare_dir(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o711);
        prepare_dir(&fresh).unwrap();
    }

    #[test]
    fn paths_cannot_escape_the_script() {
        let evil = Path::new("/srv/shop/x');system('id');//.php");
        let s = script(&[evil]);
        assert!(!s.contains("system("), "{s}");
        assert!(s.contains("hex2bin($h)"));
    }

    #[test]
    fn answers_are_read_per_file() {
        let out = b"Content-type: text/plain\r\n\r\nmamori-opcache:yes,no";
        assert_eq!(
            outcomes(out, 2).unwrap(),
            [Outcome::Invalidated, Outcome::NotCached]
        );
        assert!(outcomes(out, 3).is_none());
        assert!(outcomes(b"Status: 404 Not Found\r\n\r\nFile not found.", 1).is_none());
        assert_eq!(
            summary(b"Status: 404 Not Found\r\nContent-type: text/html\r\n\r\nFile not found.\n"),
            "Status: 404 Not Found File not found."
        );
    }
}
