// SPDX-License-Identifier: MIT
// A C++ program that uses operator new and delete and no hakmem function, linked with
// `-Wl,--as-needed -lhakmem_override` (see ../run_install_test.sh): the override library defines the
// operators, so the linker must keep it in the program's NEEDED entries, and the program must run on it.
#include <cstdio>

namespace {
int *volatile kept; // the new-expression cannot be optimised away
}

int main() {
    kept = new int(42);
    int status = *kept == 42 ? 0 : 1;
    delete kept;
    std::printf("as_needed: %s\n", status == 0 ? "OK" : "FAILED");
    return status;
}
