//! The Debian package end to end: `scripts/build-deb.sh` builds it from the test binary, lintian
//! finds nothing to say about it (pedantic and experimental tags included) but the one tag its
//! overrides justify, dpkg installs it into a private root made for the test (its own `--root`,
//! so this machine's package database and /usr are never touched; the maintainer scripts run
//! outside a chroot with DPKG_ROOT set, and must then act on nothing), and then: `man -w` finds
//! a page for loopwarden and for every verb, the installed binary runs, the bash completion
//! parses, the examples and the changelog are where Debian keeps them, and `dpkg --purge`
//! removes every file again.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Files under `root` outside dpkg's own database.
fn installed_files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.retain(|p| !p.contains("/var/lib/dpkg/"));
    out
}

#[test]
fn the_deb_installs_man_pages_completions_and_the_binary_and_removes_cleanly() {
    let test = "the_deb_installs_man_pages_completions_and_the_binary_and_removes_cleanly";
    for tool in [
        "dpkg-deb",
        "dpkg-shlibdeps",
        "strip",
        "man",
        "lintian",
        "systemd-sysusers",
    ] {
        if !require_tool(test, tool) {
            return;
        }
    }
    let tmp = TempDir::new("deb");
    let out = tmp.path().join("out");
    let root = tmp.path().join("root");
    // A root as a system has it: dpkg's database and /etc (where the guard's user is created).
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        std::fs::create_dir_all(root.join(dir)).expect("dpkg admin dir");
    }
    for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        std::fs::write(root.join(file), "").expect("dpkg database");
    }
    let repo = env!("CARGO_MANIFEST_DIR");
    let built =
        run(Command::new(format!("{repo}/scripts/build-deb.sh")).args([loopwarden(), out.to_str().expect("utf-8")]));
    let deb = built.trim();
    assert!(deb.ends_with(".deb") && Path::new(deb).is_file(), "{built}");
    let info = run(Command::new("dpkg-deb").args(["--info", deb]));
    assert!(
        info.contains("Package: loopwarden") && info.contains("Depends: libc6 (>= ") && info.contains(", iproute2"),
        "{info}"
    );
    for script in ["postinst", "prerm", "postrm"] {
        assert!(
            info.contains(&format!(" {script} ")),
            "{script} is in the control area: {info}"
        );
    }
    // What lintian says beyond the overridden tag (N: lines are the override's comment).
    let lint = run(Command::new("lintian").args(["-I", "-E", "--pedantic", "--show-overrides", deb]));
    let said: Vec<&str> = lint.lines().filter(|l| !l.starts_with("N: ")).collect();
    assert_eq!(
        said,
        ["O: loopwarden: hardening-no-fortify-functions [usr/bin/loopwarden]"],
        "lintian:\n{lint}"
    );

    let dpkg = |args: &[&str]| {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", root.display()))
            .arg("--log=/dev/null")
            // The scripts run here with DPKG_ROOT set (the root has no shell to chroot into).
            .arg("--force-script-chrootless")
            .args(args);
        run(&mut cmd)
    };
    // Dependencies are this machine's business, not the private root's.
    dpkg(&["--force-depends", "-i", deb]);

    let man_dir = root.join("usr/share/man");
    let verbs: Vec<String> = run(Command::new(loopwarden()).arg("--help"))
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A verb starts its line; wrapped descriptions are indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|v| v != "help")
        .collect();
    assert!(verbs.contains(&"audit".to_string()), "{verbs:?}");
    for page in std::iter::once("loopwarden".to_string()).chain(verbs.iter().map(|v| format!("loopwarden-{v}"))) {
        let found = run(Command::new("man").env("MANPATH", &man_dir).args(["-w", &page]));
        assert!(found.trim().ends_with(&format!("{page}.1.gz")), "{page}: {found}");
    }
    let version = run(Command::new(root.join("usr/bin/loopwarden")).arg("--version"));
    assert_eq!(version.trim(), format!("loopwarden {}", env!("CARGO_PKG_VERSION")));
    let completion = root.join("usr/share/bash-completion/completions/loopwarden");
    run(Command::new("bash").arg("-n").arg(&completion));
    assert!(
        std::fs::read_to_string(&completion)
            .expect("completion")
            .contains("audit"),
        "the completion knows the verbs"
    );
    for file in [
        "usr/share/zsh/vendor-completions/_loopwarden",
        "usr/share/fish/vendor_completions.d/loopwarden.fish",
        "usr/share/doc/loopwarden/copyright",
        "usr/share/doc/loopwarden/README.md",
        "usr/share/doc/loopwarden/examples/guard.toml",
        "usr/share/doc/loopwarden/examples/ansible/playbook.yml",
        "usr/lib/systemd/system/loopwarden-metrics.service",
        "usr/lib/systemd/system/loopwarden-metrics.timer",
        "usr/lib/systemd/system/loopwarden-guard@.service",
        "usr/lib/systemd/system/loopwarden-guard@.socket",
        "usr/lib/sysusers.d/loopwarden.conf",
    ] {
        assert!(root.join(file).is_file(), "{file} is packaged");
    }
    // The guard's unit runs as loopwarden-guard: installing the package created it (in the
    // package's root, where dpkg ran the scripts), a system user without a login shell.
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("the root's passwd");
    let guard = passwd
        .lines()
        .find(|l| l.starts_with("loopwarden-guard:"))
        .unwrap_or_else(|| panic!("no loopwarden-guard user:\n{passwd}"));
    let fields: Vec<&str> = guard.split(':').collect();
    let uid: u32 = fields[2].parse().expect("uid");
    assert!(uid > 0 && uid < 1000, "a system uid: {guard}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{guard}");
    let units: Vec<String> = std::fs::read_dir(root.join("usr/lib/systemd/system"))
        .expect("units")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        units.iter().all(|u| !u.ends_with(".toml")),
        "only units there: {units:?}"
    );
    let metrics =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/loopwarden-metrics.service")).expect("unit");
    assert!(
        metrics.contains("ReadWritePaths=-/run/nginx.pid -/var/log/nginx"),
        "{metrics}"
    );
    let changelog = run(Command::new("zcat").arg(root.join("usr/share/doc/loopwarden/changelog.gz")));
    assert!(
        changelog.starts_with(&format!("loopwarden ({}) ", env!("CARGO_PKG_VERSION"))),
        "{changelog}"
    );

    dpkg(&["--purge", "loopwarden"]);
    // The account database stays (a system user outlives its package, as Debian keeps them: its
    // files may still be owned by it); nothing else does.
    let left: Vec<String> = installed_files(&root)
        .into_iter()
        .filter(|p| {
            !["passwd", "group", "shadow", "gshadow", ".pwd.lock"]
                .iter()
                .any(|db| p.ends_with(&format!("/etc/{db}")) || p.ends_with(&format!("/etc/{db}-")))
        })
        .collect();
    assert!(left.is_empty(), "dpkg -r left files behind: {left:?}");
}

/// The postinst on a running system (its /etc an overlay in a private mount namespace, so this
/// machine's accounts are never touched): a login account named loopwarden-guard is refused,
/// never taken for the guard's; without systemd-sysusers the user is made with groupadd and
/// useradd, a system account without a login shell, also when its group already exists.
#[test]
fn the_postinst_refuses_a_login_account_and_makes_a_system_one_without_sysusers() {
    let test = "the_postinst_refuses_a_login_account_and_makes_a_system_one_without_sysusers";
    if !require_root(test) || !require_tool(test, "unshare") || !require_tool(test, "useradd") {
        return;
    }
    let tmp = TempDir::new("postinst");
    let postinst = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/debian/postinst");
    let script = r#"
set -u
mkdir -p "$T/upper" "$T/work" "$T/bin"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/upper,workdir=$T/work" /etc
# Tools the postinst may use, but not systemd-sysusers.
for tool in sh getent cut echo groupadd useradd; do ln -s "$(command -v "$tool")" "$T/bin/$tool"; done
useradd --shell /bin/bash --comment someone loopwarden-guard
PATH="$T/bin" sh "$POSTINST" configure 2> "$T/login.err"; echo "login=$?"
userdel loopwarden-guard 2>/dev/null || true
groupadd --system loopwarden-guard 2>/dev/null || true
PATH="$T/bin" sh "$POSTINST" configure 2> "$T/fresh.err"; echo "fresh=$?"
getent passwd loopwarden-guard
PATH="$T/bin" sh "$POSTINST" configure 2> "$T/again.err"; echo "again=$?"
"#;
    let out = must(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .env("T", tmp.path())
            .env("POSTINST", postinst),
    );
    let err = |name: &str| std::fs::read_to_string(tmp.path().join(name)).unwrap_or_default();
    assert!(out.contains("login=1"), "{out}\n{}", err("login.err"));
    assert!(
        err("login.err").contains("loopwarden-guard exists but is not a system account"),
        "{}",
        err("login.err")
    );
    assert!(out.contains("fresh=0"), "{out}\n{}", err("fresh.err"));
    assert!(out.contains("again=0"), "idempotent: {out}\n{}", err("again.err"));
    let account = out
        .lines()
        .find(|l| l.starts_with("loopwarden-guard:"))
        .unwrap_or_else(|| panic!("no account: {out}"));
    let fields: Vec<&str> = account.split(':').collect();
    let uid: u32 = fields[2].parse().expect("uid");
    assert!(uid > 0 && uid < 1000, "a system uid: {account}");
    assert_eq!(
        (fields[4], fields[6]),
        ("loopwarden guard", "/usr/sbin/nologin"),
        "{account}"
    );
    assert!(
        !std::fs::read_to_string("/etc/passwd")
            .expect("passwd")
            .contains("loopwarden-guard:"),
        "this machine's accounts are untouched"
    );
}
