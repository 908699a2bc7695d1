# SPDX-License-Identifier: MIT
"""Number formats shared by the progress lines and the report."""


def fmt_time(s):
    if s is None:
        return "-"
    if s >= 10:
        return "%.1f s" % s
    if s >= 1:
        return "%.2f s" % s
    if s >= 0.1:
        return "%.0f ms" % (s * 1e3)
    if s >= 0.01:
        return "%.1f ms" % (s * 1e3)
    return "%.2f ms" % (s * 1e3)


def fmt_count(n):
    if n is None:
        return "-"
    if n >= 1e6:
        return "%.1fM" % (n / 1e6)
    if n >= 1e3:
        return "%.1fk" % (n / 1e3)
    return "%d" % n


def fmt_ratio(x):
    return "-" if x is None else "%.2fx" % x
