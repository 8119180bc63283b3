#!/bin/sh
# C++ counterpart of zig-cc-aarch64.sh: `make libs` also builds
# librdkafka++ (unused by rdkafka), with CXX.
case " $* " in
  *" -shared "*) set -- "$@" -Wl,--undefined-version ;;
esac
exec "$(dirname "$0")/../.venv-sam/bin/cargo-lambda" zig c++ -- -g -fno-sanitize=all -target aarch64-linux-gnu "$@"
