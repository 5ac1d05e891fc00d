#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine with Python 3.11:
#   scripts/dev.sh hello   install what is missing, then run examples/hello.py
#   scripts/dev.sh test    install what is missing, then run ctest and pytest
#   scripts/dev.sh bench   install what is missing, then run the benchmark suite
#   scripts/dev.sh install only install
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
APT_PACKAGES=(build-essential cmake pkg-config pybind11-dev nlohmann-json3-dev libspdlog-dev
  libfmt-dev libcli11-dev libgtest-dev libgmock-dev libsqlite3-dev libzstd-dev libxxhash-dev
  chromium)  # chromium: the browser tests of cairn ui (Playwright drives it; it downloads no browser)

install_system() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing system packages: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
}

install_python() {
  local extras=${1:-test}
  "$PYTHON" -m pip install -q --disable-pip-version-check "scikit-build-core>=0.10" "pybind11>=2.11" ninja
  # --no-build-isolation reuses the tools above, so rebuilds are incremental (build/<wheel tag>).
  "$PYTHON" -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[$extras]"
}

build_cpp_tests() {
  cmake -S . -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_PYTHON=OFF >/dev/null
  cmake --build build/cpp -j "$(nproc)"
}

case "${1:-}" in
  install)
    install_system
    install_python test,examples,ui
    ;;
  hello)
    install_system
    install_python test,examples
    cd examples && "$PYTHON" hello.py run
    ;;
  test)
    install_system
    install_python test,examples,ui
    build_cpp_tests
    ctest --test-dir build/cpp --output-on-failure -j "$(nproc)"
    "$PYTHON" -m pytest -q
    ;;
  bench)
    install_system
    install_python bench
    shift
    "$PYTHON" bench/run.py "$@"
    ;;
  *)
    echo "usage: $0 hello|test|bench|install" >&2
    exit 2
    ;;
esac
