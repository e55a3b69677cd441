#!/usr/bin/env bash
# System tools the tests and benchmarks need: bowtie 1 (engine parity peer), BLAST+ (check benchmark peer);
# Chromium and ChromeDriver
# (headless browser tests of oligolab serve; browsers cannot be downloaded by selenium here).
set -euo pipefail
need=()
command -v bowtie >/dev/null 2>&1 || need+=(bowtie)
command -v blastn >/dev/null 2>&1 || need+=(ncbi-blast+)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-system-tools: need root to apt-get install ${need[*]}; parity and browser tests will be skipped" >&2; exit 0; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
