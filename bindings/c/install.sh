#!/bin/sh
# Build libdevaddr and install it (libdevaddr.so, libdevaddr.a), include/devaddr.h and
# devaddr.pc under PREFIX:  bindings/c/install.sh PREFIX [--debug]
# Then: cc app.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs devaddr)
set -eu
prefix=${1:?usage: install.sh PREFIX [--debug]}
root=$(cd "$(dirname "$0")/../.." && pwd)
profile=release
flag=--release
if [ "${2:-}" = --debug ]; then
  profile=debug
  flag=
fi
${CARGO:-cargo} build -q -p devaddr-c $flag --manifest-path "$root/Cargo.toml"
lib=${CARGO_TARGET_DIR:-$root/target}/$profile
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp "$lib/libdevaddr.so" "$lib/libdevaddr.a" "$prefix/lib/"
cp "$root/include/devaddr.h" "$prefix/include/"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/bindings/c/Cargo.toml" | head -n 1)
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$root/bindings/c/devaddr.pc.in" \
  >"$prefix/lib/pkgconfig/devaddr.pc"
