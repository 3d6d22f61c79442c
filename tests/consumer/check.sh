#!/bin/sh
# Uses invdl the two ways a C project does, outside the source tree:
#   1. installed: `meson install --destdir` into a staging directory, then
#      prog.c compiled with `pkg-config --cflags --libs invdl` (and
#      --static) and run;
#   2. as a meson subproject: this directory's meson.build, with invdl's
#      tree linked in as subprojects/invdl, set up, built and tested.
# Usage: tests/consumer/check.sh BUILD_DIR   (an invdl build directory)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "$1" && pwd)
cc=${CC:-cc}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "== meson install into a staging directory"
meson install -C "$build" --destdir "$scratch/stage" --quiet
for f in libinvdl.a invdl.h invdl.pc; do
    found=$(find "$scratch/stage" -name "$f")
    [ -n "$found" ] || { echo "meson install did not install $f" >&2; exit 1; }
    echo "installed: ${found#"$scratch/stage"}"
done
pcdir=$(dirname "$(find "$scratch/stage" -name invdl.pc)")

echo "== a program built with pkg-config"
# PKG_CONFIG_SYSROOT_DIR maps the installed prefix into the staging tree.
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$scratch/stage"
for static in "" --static; do
    flags=$(pkg-config --cflags --libs $static invdl)
    echo "pkg-config --cflags --libs $static invdl: $flags"
    # shellcheck disable=SC2086 # the flags are words
    "$cc" -std=c11 -Wall -Wextra -pedantic -Werror "$here/prog.c" $flags -o "$scratch/prog"
    "$scratch/prog"
done
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

echo "== a meson project with invdl as a subproject"
mkdir -p "$scratch/project/subprojects"
cp "$here/meson.build" "$here/prog.c" "$scratch/project/"
ln -s "$repo" "$scratch/project/subprojects/invdl"
meson setup "$scratch/project/build" "$scratch/project" >"$scratch/setup.log" ||
    { cat "$scratch/setup.log"; exit 1; }
grep -i "invdl" "$scratch/setup.log" | grep -i "dependency\|subproject" || true
meson compile -C "$scratch/project/build"
meson test -C "$scratch/project/build" --print-errorlogs
echo "consumers: OK"
