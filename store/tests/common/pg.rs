//! A throwaway PostgreSQL cluster: `initdb` into a temporary folder,
//! `pg_ctl start` on 127.0.0.1 at a free port, stopped (and removed) when
//! the guard drops, even when the test fails.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (CI does),
//! the cluster's folder is given to the `postgres` user (which the server
//! package creates) and `initdb`/`pg_ctl` run as that user through
//! `runuser` (or `su`). As any other user they run directly.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; the superuser `flow` connects without a password.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// The connection string.
    pub url: String,
}

/// The folder with `initdb` and `pg_ctl`: on PATH, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout, not on PATH).
fn server_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Cluster {
    /// Starts a cluster; fails the test with what to do when PostgreSQL's
    /// server programs are missing.
    pub fn start() -> Self {
        let bin = server_bin().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server programs (initdb, pg_ctl) are not on PATH nor under \
                 /usr/lib/postgresql/*/bin: run `bash scripts/setup.sh` (it installs postgresql)"
            )
        });
        let as_postgres = is_root();
        // Under /tmp, which the `postgres` user can enter (a TMPDIR under
        // /root could not be).
        let dir = tempfile::Builder::new()
            .prefix("flow-pg")
            .tempdir_in("/tmp")
            .unwrap();
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:", &dir.path().display().to_string()])
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "cannot give `{}` to the `postgres` user: as root the tests run the server as `postgres`, which the postgresql package creates",
                dir.path().display()
            );
        }
        let mut cluster = Self {
            dir,
            bin,
            as_postgres,
            url: String::new(),
        };
        let data = cluster.data().display().to_string();
        cluster.must(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "flow",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "-N",
            ],
        );
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("server.log").display().to_string();
        let started = cluster.pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start",
            ],
        );
        if !started.status.success() {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "pg_ctl start failed: {}\n{server_log}",
                String::from_utf8_lossy(&started.stderr)
            );
        }
        cluster.url = format!("postgresql://flow@127.0.0.1:{port}/postgres");
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a server program (as `postgres` when we are root).
    fn pg(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            if Path::new("/usr/sbin/runuser").exists() || Path::new("/sbin/runuser").exists() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&path).args(args);
                c
            } else {
                let line: Vec<String> = std::iter::once(path.display().to_string())
                    .chain(args.iter().map(|a| a.to_string()))
                    .map(|a| shell_quote(&a))
                    .collect();
                let mut c = Command::new("su");
                c.args(["postgres", "-s", "/bin/sh", "-c", &line.join(" ")]);
                c
            }
        } else {
            let mut c = Command::new(&path);
            c.args(args);
            c
        };
        cmd.current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", path.display()))
    }

    fn must(&self, program: &str, args: &[&str]) {
        let out = self.pg(program, args);
        assert!(
            out.status.success(),
            "`{program}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs SQL and returns each row's columns as text (NULL as "").
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let rows = client.simple_query(sql).await.unwrap();
            rows.into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("").to_string())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()
        })
    }

    /// One value.
    pub fn value(&self, sql: &str) -> String {
        self.query(sql)
            .first()
            .and_then(|r| r.first().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}
