#!/bin/sh
# Uses invdl the three ways a C project does, outside the source tree:
#   1. installed: `meson install --destdir` into a staging directory, then
#      prog.c compiled with `pkg-config --cflags --libs invdl` (and
#      --static) and run;
#   2. installed, from CMake: this directory's CMakeLists.txt finds the
#      package (find_package(invdl), invdl::invdl), builds prog.c and runs
#      it (skipped, saying so, where cmake is missing);
#   3. as a meson subproject: this directory's meson.build, with invdl's
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
for f in libinvdl.a invdl.h invdl.pc invdlConfig.cmake invdlConfigVersion.cmake; do
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

echo "== a CMake project: find_package(invdl), invdl::invdl"
if command -v cmake >/dev/null 2>&1; then
    prefix=$(dirname "$(dirname "$(find "$scratch/stage" -name invdl.h)")")
    cmake -S "$here" -B "$scratch/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="-Wall -Wextra -pedantic -Werror" \
        >"$scratch/cmake.log" 2>&1 || { cat "$scratch/cmake.log"; exit 1; }
    cmake --build "$scratch/cmake-build" >>"$scratch/cmake.log" 2>&1 ||
        { cat "$scratch/cmake.log"; exit 1; }
    "$scratch/cmake-build/prog"
    # A request for another minor version must be refused.
    if cmake -S "$here" -B "$scratch/cmake-wrong" -DCMAKE_PREFIX_PATH="$prefix" \
        -DINVDL_CONSUMER_VERSION=0.2 >"$scratch/cmake-wrong.log" 2>&1; then
        echo "find_package(invdl 0.2) accepted version 0.1" >&2
        exit 1
    fi
    grep -q 'invdlConfig.cmake, version: 0.1.0' "$scratch/cmake-wrong.log" || {
        cat "$scratch/cmake-wrong.log"
        echo "find_package(invdl 0.2) failed for another reason than the version" >&2
        exit 1
    }
    echo "find_package(invdl 0.2) refused version 0.1.0, as it should be"
else
    echo "cmake not found: the CMake consumer SKIPPED"
fi

echo "== a meson project with invdl as a subproject"
mkdir -p "$scratch/project/subprojects"
cp "$here/meson.build" "$here/prog.c" "$scratch/project/"
ln -s "$repo" "$scratch/project/subprojects/invdl"
meson setup "$scratch/project/build" "$scratch/project" >"$scratch/setup.log" ||
    { cat "$scratch/setup.log"; exit 1; }
grep -i "invdl" "$scratch/setup.log" | grep -i "dependency\|subproject" || true
meson compile -C "$scratch/project/build"
meson test -C "$scratch/project/build" --print-errorlogs
echo "consumers: OK (pkg-config, CMake, meson subproject)"
