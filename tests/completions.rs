//! Shell completions: the generated bash, zsh and fish scripts carry the value hints (files for
//! --facts and --out, directories for --root and --out-dir, users for --allow-user, each verb's
//! own formats, the lab's scenarios), and bash, with the script loaded, really completes them —
//! `loopwarden audit --format ` to the four formats, `prove --format ` to three — and
//! `--netns ` to the `ip netns` names (in a sandboxed host, whose namespaces are its own).

mod common;

use common::sandbox;
use common::*;
use std::process::Command;
use std::time::Duration;

fn script(shell: &str) -> String {
    must(Command::new(loopwarden()).args(["completions", shell]))
}

/// The `complete` commands of `script` (a quoted list of values spans lines) for `verb`'s
/// option `--long`.
fn fish_lines<'a>(script: &'a str, verb: &str, long: &str) -> Vec<&'a str> {
    let using = format!("__fish_loopwarden_using_subcommand {verb}\"");
    let flag = format!(" -l {long} ");
    script
        .split("\ncomplete ")
        .filter(|l| l.contains(&using) && l.contains(&flag))
        .collect()
}

#[test]
fn the_scripts_carry_the_value_hints() {
    let fish = script("fish");
    for (verb, long, hint) in [
        ("audit", "facts", "-r -F"),
        ("audit", "out", "-r -F"),
        ("facts", "out", "-r -F"),
        ("prove", "facts", "-r -F"),
        ("harden", "facts", "-r -F"),
        ("harden", "root", "(__fish_complete_directories)"),
        ("man", "out-dir", "(__fish_complete_directories)"),
        ("guard", "config", "-r -F"),
        ("guard", "allow-user", "(__fish_complete_users)"),
        ("audit", "format", "human\\t"),
        ("prove", "scenario", "kube-route-localnet"),
    ] {
        let lines = fish_lines(&fish, verb, long);
        assert!(
            lines.iter().any(|l| l.contains(hint)),
            "fish {verb} --{long}: {lines:?}"
        );
    }
    let formats = |verb: &str| fish_lines(&fish, verb, "format").join("\n");
    assert!(formats("audit").contains("prometheus\\t"), "{}", formats("audit"));
    assert!(formats("prove").contains("prometheus\\t"), "{}", formats("prove"));
    assert!(
        fish.contains("__fish_seen_subcommand_from audit facts prove harden\" -l netns -x -a \"(ip netns list"),
        "fish --netns"
    );

    let zsh = script("zsh");
    for wanted in [
        "]:FILE:_files' \\",
        "--root=[",
        "]:DIR:_files -/' \\",
        "]:USER:_users' \\",
        "]:HOST:_hosts' \\",
        "]:ORIGIN:_urls' \\",
        "((human\\:\"For a terminal, coloured on a TTY",
        "prometheus\\:\"Prometheus text format",
        "(kube-route-localnet docker-published-loopback",
    ] {
        assert!(zsh.contains(wanted), "zsh lacks {wanted}");
    }

    let bash = script("bash");
    for wanted in [
        "COMPREPLY=($(compgen -W \"human json html prometheus\" -- \"${cur}\"))",
        "COMPREPLY=($(compgen -W \"info low medium high critical never\" -- \"${cur}\"))",
        "ip netns list",
    ] {
        assert!(bash.contains(wanted), "bash lacks {wanted}");
    }
}

/// Bash with the completion loaded completes each command line (the word being completed
/// last, possibly empty) with the function the script registered for loopwarden; one line of
/// candidates per command line, sorted.
const COMPLETE: &str = r#"
source "$1"; shift
fn=$(complete -p loopwarden | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[ -n "$fn" ] || { echo "no completion function registered" >&2; exit 1; }
for line in "$@"; do
    read -r -a COMP_WORDS <<< "$line"
    [[ "$line" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE=$line; COMP_POINT=${#line}; COMPREPLY=()
    "$fn" loopwarden "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
    printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd' ' -
done
"#;

fn bash_complete(completion: &std::path::Path, lines: &[&str]) -> Vec<String> {
    let out = must(
        Command::new("bash")
            .args(["--norc", "--noprofile", "-c", COMPLETE, "complete"])
            .arg(completion)
            .args(lines),
    );
    out.lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_formats_severities_and_scenarios() {
    let test = "bash_completes_formats_severities_and_scenarios";
    if !require_tool(test, "bash") {
        return;
    }
    let tmp = TempDir::new("completions");
    let completion = tmp.path().join("loopwarden.bash");
    std::fs::write(&completion, script("bash")).expect("completion file");
    let got = bash_complete(
        &completion,
        &[
            "loopwarden audit --format ",
            "loopwarden prove --format ",
            "loopwarden fleet --format h",
            "loopwarden audit --fail-on ",
            "loopwarden prove --scenario kube",
            "loopwarden aud",
            "loopwarden man f",
        ],
    );
    assert_eq!(
        got,
        [
            "html human json prometheus",
            "html human json prometheus",
            "html human",
            "critical high info low medium never",
            "kube-route-localnet",
            "audit",
            "facts fleet",
        ]
    );
}

#[test]
fn bash_completes_netns_names() {
    let test = "bash_completes_netns_names";
    if !require_root(test) || !require_tool(test, "bash") {
        return;
    }
    let dir = TempDir::new("completions-netns");
    let completion = dir.path().join("loopwarden.bash");
    std::fs::write(&completion, script("bash")).expect("completion file");
    // In the sandbox, /run/netns is the sandbox's own: these are the only names there.
    let out = sandbox::run(
        &format!(
            "ip netns add lw-compl-a\nip netns add lw-compl-b\n\
             bash --norc --noprofile -c '{}' complete \"$OUT/loopwarden.bash\" \
             'loopwarden audit --netns ' 'loopwarden facts --netns lw-compl-b' > \"$OUT/netns.txt\"\n",
            COMPLETE.replace('\'', "'\\''")
        ),
        &dir,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = std::fs::read_to_string(dir.path().join("netns.txt")).expect("completions");
    assert_eq!(got, "lw-compl-a lw-compl-b\nlw-compl-b\n");
}
