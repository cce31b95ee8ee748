# Sourced by the benchmark scripts: refuses to run without root (every benchmark creates a
# network namespace), moves to the repository root, builds the release binary and sets $binary.
if [ "$(id -u)" -ne 0 ]; then
    echo "$(basename "$0"): needs root (it creates a network namespace)" >&2
    exit 1
fi
cd "$(dirname "$0")/.."
cargo build --release --quiet
binary=$(realpath "${CARGO_TARGET_DIR:-target}/release/loopwarden")
