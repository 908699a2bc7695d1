#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Renders a man page with man -l and fails on any warning (or if it does not render). Exits 77 (ctest skip)
# when man is not installed. Usage: tools/check_man_page.sh <page> <expected title>
set -u
page=$1
title=$2
command -v man >/dev/null || { echo "SKIP: man is not installed"; exit 77; }
err=$(mktemp)
trap 'rm -f "$err"' EXIT
out=$(MANWIDTH=100 MAN_KEEP_FORMATTING= man --warnings -l "$page" 2>"$err") || {
    cat "$err"
    echo "FAIL: man -l $page failed"
    exit 1
}
if [[ -s $err ]]; then
    cat "$err"
    echo "FAIL: warnings while rendering $page"
    exit 1
fi
grep -q "^$title" <<<"$out" || { echo "FAIL: $page does not render its title $title"; exit 1; }
for section in NAME SYNOPSIS DESCRIPTION ERRORS ENVIRONMENT EXAMPLES; do
    grep -q "^$section" <<<"$out" || { echo "FAIL: no $section section in $page"; exit 1; }
done
echo "ok: $page renders ($(wc -l <<<"$out") lines)"
