#!/bin/sh
# C compiler for arm64 Lambda builds, for librdkafka's own configure script
# (rdkafka-sys without cmake), which reads only CC, not the per-target
# CC_aarch64_unknown_linux_gnu that cargo-lambda sets for the cc crate.
# The same zig that cargo-lambda uses for everything else.
#
# `make libs` also links librdkafka.so (unused: we link the static
# library), whose version script names a symbol absent from release builds;
# zig's lld refuses that unless told it may.
case " $* " in
  *" -shared "*) set -- "$@" -Wl,--undefined-version ;;
esac
exec "$(dirname "$0")/../.venv-sam/bin/cargo-lambda" zig cc -- -g -fno-sanitize=all -target aarch64-linux-gnu "$@"
