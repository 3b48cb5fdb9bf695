//! The binary as the container image and the Kubernetes manifests run it
//! (deploy/): a read-only root filesystem and no writable directory, user
//! and group 65532 with no capabilities and no new privileges, an environment
//! of COGNITO_VERIFY_* settings only (no HOME, no AWS credentials or other
//! AWS_* variables), and `/` as its working directory. It must start, report
//! SERVING, reach Cognito (the embedded backend, in this test's process),
//! exit 0 on SIGTERM, and never log a permission or read-only error.
//!
//! The sandbox comes from util-linux, as root: a private mount namespace
//! (`unshare -m`) in which every mount is bound again read-only, then
//! `setpriv` drops to 65532. Where that is not permitted (not root, no
//! CAP_SYS_ADMIN), the test runs the strongest variant it can and says on
//! stderr which one ran.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
};

use cognito_emulator::{store::Seed, store::DEMO_PASSWORD, store::DEMO_USER, Settings};

use cognito_verify::{
    proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient,
    proto::DeliveryMedium,
};
use tokio::process::Command;
use tonic::transport::Channel;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::common::{
    binary::{Running, BIN},
    send_request,
    stack::{self, sdk_client, sign_in},
};

/// distroless' `nonroot`, the image's `USER` and the pods' `runAsUser`.
const NONROOT: u32 = 65_532;

/// Run in the mount namespace `unshare` made, as root: bind the whole tree
/// again, make every mount read-only (except the kernel's own filesystems,
/// which only root may write), then become 65532 and run the rest of the
/// arguments. `PWD` is the shell's: the binary gets only what the test sets.
const SANDBOX_SCRIPT: &str = r#"set -eu
unset PWD OLDPWD
mount=$1 setpriv=$2
shift 2
"$mount" --rbind / /
"$mount" -o remount,bind,ro /
while read -r _ point fstype _; do
  case "$fstype" in
    proc|sysfs|devtmpfs|devpts|cgroup|cgroup2|securityfs|debugfs|tracefs|pstore|bpf|configfs|fusectl|binfmt_misc|autofs|hugetlbfs|efivarfs) ;;
    *) "$mount" -o remount,bind,ro "$point" ;;
  esac
done </proc/self/mounts
exec "$setpriv" --reuid 65532 --regid 65532 --clear-groups --no-new-privs -- "$@"
"#;

/// Kernel filesystems the script leaves as they are.
const KERNEL_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "autofs",
    "hugetlbfs",
    "efivarfs",
];

/// How much of the container this machine lets the test reproduce.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    /// Read-only mounts and user 65532.
    ReadOnlyNonRoot,
    /// User 65532 on the machine's own filesystem.
    NonRoot,
    /// The environment and working directory only.
    EnvironmentOnly,
}

/// The binary copied where user 65532 can reach it (the build directory may
/// not be traversable for it), and how to run it.
struct Sandbox {
    dir: PathBuf,
    binary: PathBuf,
    variant: Variant,
    unshare: Option<PathBuf>,
    sh: Option<PathBuf>,
    mount: Option<PathBuf>,
    setpriv: Option<PathBuf>,
}

impl Sandbox {
    /// Copies the binary into a fresh directory (mode 0755) and picks the
    /// strongest variant that actually runs it here.
    fn prepare() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cognito-verify-container-runtime-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let binary = dir.join("cognito-verify");
        fs::copy(BIN, &binary).unwrap();
        fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
        let mut sandbox = Self {
            dir,
            binary,
            variant: Variant::EnvironmentOnly,
            unshare: which("unshare"),
            sh: which("sh"),
            mount: which("mount"),
            setpriv: which("setpriv"),
        };
        if proc_status_field(std::process::id(), "Uid").as_deref() != Some("0\t0\t0\t0") {
            eprintln!("container_runtime: not root: user and mounts cannot be changed");
            return sandbox;
        }
        for variant in [Variant::ReadOnlyNonRoot, Variant::NonRoot] {
            match sandbox.probe(variant) {
                Ok(()) => {
                    sandbox.variant = variant;
                    break;
                }
                Err(why) => eprintln!("container_runtime: {variant:?} not available: {why}"),
            }
        }
        sandbox
    }

    /// The program and the arguments that run the copied binary with `args`.
    fn argv(&self, variant: Variant, args: &[&str]) -> Option<Vec<String>> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let mut argv = match variant {
            Variant::ReadOnlyNonRoot => vec![
                path(&self.unshare)?,
                "-m".into(),
                "--propagation".into(),
                "private".into(),
                path(&self.sh)?,
                "-c".into(),
                SANDBOX_SCRIPT.into(),
                "sandbox".into(),
                path(&self.mount)?,
                path(&self.setpriv)?,
            ],
            Variant::NonRoot => vec![
                path(&self.setpriv)?,
                "--reuid".into(),
                NONROOT.to_string(),
                "--regid".into(),
                NONROOT.to_string(),
                "--clear-groups".into(),
                "--no-new-privs".into(),
                "--".into(),
            ],
            Variant::EnvironmentOnly => vec![],
        };
        argv.push(self.binary.display().to_string());
        argv.extend(args.iter().map(|a| a.to_string()));
        Some(argv)
    }

    /// A command with an empty environment but `env`, in `/`.
    fn command(&self, variant: Variant, args: &[&str], env: &[(&str, &str)]) -> Command {
        let argv = self.argv(variant, args).expect("tools found");
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(env.iter().copied())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Whether `variant` runs the binary (`--version`) on this machine.
    fn probe(&self, variant: Variant) -> Result<(), String> {
        let argv = self
            .argv(variant, &["--version"])
            .ok_or("unshare, sh, mount or setpriv not found")?;
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .current_dir("/")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A program on the test's PATH (the sandboxed command has no PATH).
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A field of /proc/PID/status, e.g. `Uid` → `"65532\t65532\t65532\t65532"`.
fn proc_status_field(pid: u32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
}

/// /proc/PID/mounts decodes `\040`-style escapes in mount points.
fn unescape(point: &str) -> String {
    let mut out = String::new();
    let mut rest = point;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        match u8::from_str_radix(rest.get(i + 1..i + 4).unwrap_or(""), 8) {
            Ok(byte) => {
                out.push(byte as char);
                rest = &rest[i + 4..];
            }
            Err(_) => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out + rest
}

/// Every directory mount the process sees, other than the kernel's, refuses
/// a new file even to root (this test): the process could write nowhere.
fn assert_every_mount_read_only(pid: u32) {
    let mounts = fs::read_to_string(format!("/proc/{pid}/mounts")).unwrap();
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let mut checked = 0;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (point, fstype) = (unescape(fields[1]), fields[2]);
        if KERNEL_FS.contains(&fstype) {
            continue;
        }
        // The process's view of the mount point, through its root.
        let dir = root.join(point.trim_start_matches('/'));
        if !dir.is_dir() {
            continue; // a file bound over a file
        }
        let probe = dir.join(format!(".write-probe-{}", std::process::id()));
        match fs::File::create_new(&probe) {
            Ok(_) => {
                let _ = fs::remove_file(&probe);
                panic!("{point} ({fstype}) is writable inside the sandbox");
            }
            Err(e) => assert_eq!(
                e.raw_os_error(),
                Some(30), // EROFS
                "{point} ({fstype}): {e}"
            ),
        }
        checked += 1;
    }
    assert!(checked > 0, "no mount checked: {mounts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_read_only_as_nonroot_without_home_or_credentials() {
    let (url, backend, _stop_backend) = stack::backend(Seed::demo(), Settings::faithful()).await;
    let token = sign_in(&sdk_client(&url).await, DEMO_USER, DEMO_PASSWORD).await;
    let sandbox = Sandbox::prepare();
    // scripts/test (CI) runs as root and must prove the real thing.
    if std::env::var_os("COGNITO_VERIFY_TEST_REQUIRE_SANDBOX").is_some() {
        assert_eq!(
            sandbox.variant,
            Variant::ReadOnlyNonRoot,
            "COGNITO_VERIFY_TEST_REQUIRE_SANDBOX is set: the read-only, non-root sandbox must run"
        );
    }
    eprintln!(
        "container_runtime: variant {:?} ({})",
        sandbox.variant,
        match sandbox.variant {
            Variant::ReadOnlyNonRoot => "read-only mounts, user 65532, empty environment, cwd /",
            Variant::NonRoot => "user 65532, empty environment, cwd / (mounts stay writable)",
            Variant::EnvironmentOnly => "empty environment, cwd / only",
        }
    );

    // As a pod gets it: flags, plus settings from the ConfigMap.
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--region",
        "us-east-1",
        "--cognito-endpoint",
        &url,
        "--user-pool",
        "us-east-1_DevPool01",
        "--shutdown-delay-secs",
        "0",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    let env = [
        ("COGNITO_VERIFY_DRAIN_TIMEOUT_SECS", "5"),
        // Debug shows more of what the SDK tries (profile files, home).
        ("COGNITO_VERIFY_LOG", "debug"),
    ];
    // Every line must be JSON: `Running` fails on one that is not (a
    // complaint from the sandbox itself, say).
    let running = Running::start(sandbox.command(sandbox.variant, &args, &env)).await;
    let (addr, pid) = (running.addr.clone(), running.child.id().unwrap());

    // What the process is: `unshare`, `sh` and `setpriv` exec'd it in turn.
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(sandbox.binary.as_os_str().as_encoded_bytes()),
        "pid {pid} is not the binary: {}",
        String::from_utf8_lossy(&cmdline)
    );
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        environ.iter().all(|v| v.starts_with("COGNITO_VERIFY_")),
        "environment beyond COGNITO_VERIFY_*: {environ:?}"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    if sandbox.variant != Variant::EnvironmentOnly {
        let ids = format!("{NONROOT}\t{NONROOT}\t{NONROOT}\t{NONROOT}");
        assert_eq!(proc_status_field(pid, "Uid"), Some(ids.clone()));
        assert_eq!(proc_status_field(pid, "Gid"), Some(ids));
        assert_eq!(proc_status_field(pid, "Groups").as_deref(), Some(""));
        assert_eq!(
            proc_status_field(pid, "CapEff").as_deref(),
            Some("0000000000000000")
        );
        assert_eq!(proc_status_field(pid, "NoNewPrivs").as_deref(), Some("1"));
    }
    if sandbox.variant == Variant::ReadOnlyNonRoot {
        assert_ne!(
            fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(),
            fs::read_link("/proc/self/ns/mnt").unwrap(),
            "not in a mount namespace of its own"
        );
        assert_every_mount_read_only(pid);
    }

    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    let response = UserAttributeVerificationServiceClient::new(channel)
        .get_user_attribute_verification_code(send_request(&token, "email"))
        .await
        .expect("GetUserAttributeVerificationCode through the sandboxed binary")
        .into_inner();
    let details = response.code_delivery_details.expect("delivery details");
    assert_eq!(details.delivery_medium(), DeliveryMedium::Email);
    let delivered = backend.outbox.list(Some(DEMO_USER), Some("email"));
    assert_eq!(delivered.len(), 1, "the backend sent one code");
    assert_eq!(delivered[0].code.len(), 6);

    let (code, log) = running.terminate().await;
    assert_eq!(code, 0, "{log}");
    let lower = log.to_lowercase();
    for complaint in [
        "permission",
        "read-only",
        "readonly",
        "(os error 1)",
        "(os error 13)",
        "(os error 30)",
    ] {
        assert!(
            !lower.contains(complaint),
            "{complaint:?} in the log: {log}"
        );
    }
    assert!(log.contains("drained"), "{log}");
}
