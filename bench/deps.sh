#!/bin/sh
# Install what weft-bench's baselines need, from Debian's packages: GLib
# (GAsyncQueue, GThreadPool), libuv (uv_queue_work), Go (channels and
# goroutines), Python (ThreadPoolExecutor), oneTBB (task_group) and
# Boost.Context (fcontext), with a C++ compiler to build against the last
# two. Only missing ones are installed; nothing is fetched from anywhere but
# the distribution.
set -e
missing=""
pkg-config --exists glib-2.0 2>/dev/null || missing="$missing libglib2.0-dev"
pkg-config --exists libuv 2>/dev/null || missing="$missing libuv1-dev"
pkg-config --exists tbb 2>/dev/null || missing="$missing libtbb-dev"
[ -f /usr/include/boost/context/detail/fcontext.hpp ] || missing="$missing libboost-context-dev"
command -v go >/dev/null 2>&1 || missing="$missing golang-go"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
command -v g++ >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 || missing="$missing g++"
[ -z "$missing" ] && exit 0
echo "weft-bench baselines: installing$missing"
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing
