#!/bin/sh
# The two commands of README.md, for a fresh Debian 12 machine:
#   ./dev.sh serve   build, then serve etc/demo-site on http://127.0.0.1:8080 (Ctrl-C stops)
#   ./dev.sh check   build warning-free, then run every test (make check)
# Both install missing build dependencies from debian/control first.
set -eu
cd "$(dirname "$0")"
BUILD_DIR=${BUILD_DIR:-build}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

deps_install() {
	if command -v dpkg-checkbuilddeps >/dev/null 2>&1 && dpkg-checkbuilddeps >/dev/null 2>&1; then
		return 0
	fi
	echo "dev.sh: installing build dependencies listed in debian/control"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq ./ >/dev/null
}

build() {
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		autoreconf -fi
	fi
	mkdir -p "$BUILD_DIR"
	if [ ! -f "$BUILD_DIR/Makefile" ]; then
		(cd "$BUILD_DIR" && ../configure --enable-werror ${CONFIGURE_FLAGS:-})
	fi
	make -C "$BUILD_DIR" -j"$(nproc)"
}

case "${1:-}" in
serve)
	deps_install
	build
	make -C "$BUILD_DIR" --no-print-directory etc/demo.conf >/dev/null
	echo "Serving etc/demo-site on http://127.0.0.1:8080/ (Ctrl-C stops)"
	# exec: Ctrl-C reaches the server itself, which stops cleanly.
	exec "$BUILD_DIR/src/httpd" -F -f "$BUILD_DIR/etc/demo.conf"
	;;
check)
	deps_install
	build
	make -C "$BUILD_DIR" -j"$(nproc)" check
	;;
*)
	echo "usage: ./dev.sh serve | check" >&2
	exit 1
	;;
esac
